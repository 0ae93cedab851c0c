"""ft_launcher never leaves a job unwatched: a dead monitor, a rank that never connects, a rank that never exits."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "launcher_workers"))
from harness import PLAIN, WORKERS, Launches, StderrLines, pid_alive, records, wait_for  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = ["--standalone", "--ft-workload-check-interval=0.1"]


@pytest.fixture
def launches(tmp_path):
    runs = Launches(tmp_path)
    yield runs
    runs.cleanup()


def _stepping(out: Path, ranks: int):
    found = records(out)
    return found if len(found) == ranks and all(r["steps"] >= 1 for r in found.values()) else None


def test_a_dead_monitor_thread_ends_the_job_within_a_second(launches, tmp_path):
    out, die = tmp_path / "out", tmp_path / "die"
    proc = launches.start([*FAST, "--nproc-per-node=2", "--max-restarts=3", PLAIN, f"out={out}", "steps=100000"],
                          out, env={"MONITOR_DIE_FILE": str(die)},
                          launcher=[sys.executable, str(WORKERS / "dying_monitor_launcher.py")])
    stderr = StderrLines(proc)
    found = wait_for(lambda: _stepping(out, 2), 60, "both ranks to take a step")
    die.touch()
    killed = time.monotonic()
    proc.wait(timeout=60)
    err = stderr.text()
    assert proc.returncode == 1, err
    noticed = stderr.first("the rank monitor stopped unexpectedly")
    assert noticed is not None, err
    assert noticed - killed <= 1.0 + 0.1 + 0.25, err  # one check interval to die, then the agent's next poll
    assert "job failed" in err and "restarting" not in err
    assert "Traceback" not in err.split("the rank monitor thread stopped")[-1]
    assert not any(pid_alive(r["pid"]) for r in found.values()), "no worker outlives the job"
    assert not any(r.get("finished") for r in records(out).values())
