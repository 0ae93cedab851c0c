"""ft_launcher never leaves a job unwatched: a dead monitor, a rank that never connects, a rank that never exits."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
from ft_helpers.launches import PLAIN, WORKERS, StderrLines, pid_alive, records, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = ["--standalone", "--ft-workload-check-interval=0.1"]


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
    killed = time.time()
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


def test_a_rank_stuck_before_connecting_is_reported_with_stacks_and_restarted(launches, tmp_path):
    out = tmp_path / "out"
    proc = launches.start([*FAST, "--nproc-per-node=1", "--max-restarts=1", "--ft-initial-rank-heartbeat-timeout=2",
                           "--log-dir", str(tmp_path / "logs"), PLAIN, f"out={out}", "stuck_before_init=0@0"], out)
    stderr = StderrLines(proc)
    proc.wait(timeout=90)
    err = stderr.text()
    assert proc.returncode == 0, err
    started, noticed = stderr.first("attempt 0 started"), stderr.first("did not connect to the rank monitor")
    assert started is not None and noticed is not None, err
    assert noticed - started <= 2 + 1, err
    gap = float(re.search(r"did not connect to the rank monitor ([\d.]+) s after it started", err).group(1))
    assert 2 <= gap <= 2 + 1  # shown rounded to 0.1 s
    assert "initial_rank_heartbeat_timeout is 2 s from --ft-initial-rank-heartbeat-timeout" in err
    stacks = tmp_path / "logs" / "stacks" / "stacks-rank0-attempt0.txt"
    assert "_stuck_before_init" in stacks.read_text(), "the stacks were taken before the rank connected"
    assert "_stuck_before_init" in err  # top frames in the report
    found = records(out)
    assert (0, 0) not in found and found[(0, 1)]["finished"], "attempt 0 never connected; attempt 1 finished"


def test_a_rank_that_never_connects_ends_the_job_with_1_when_the_budget_is_spent(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run([*FAST, "--nproc-per-node=1", "--max-restarts=0", "--no-fork-server",
                              "--ft-initial-rank-heartbeat-timeout=2", PLAIN, f"out={out}",
                              "stuck_before_init=0@*"], out, timeout=90)
    assert code == 1, err
    assert "did not connect to the rank monitor" in err
    assert "no stacks: started as a new process" in err  # said plainly, and no SIGUSR2 was sent
    assert "killed by SIGUSR2" not in err
    assert records(out) == {}


def test_a_rank_that_never_exits_after_shutdown_is_reported_with_stacks_and_killed(launches, tmp_path):
    out = tmp_path / "out"
    proc = launches.start([*FAST, "--nproc-per-node=2", "--max-restarts=0", "--ft-rank-exit-timeout=2",
                           "--log-dir", str(tmp_path / "logs"), PLAIN, f"out={out}", "stuck_at_exit=1@0"], out)
    stderr = StderrLines(proc)
    proc.wait(timeout=90)
    err = stderr.text()
    assert proc.returncode == 1, err
    found = records(out)
    assert found[(0, 0)]["finished"] and found[(1, 0)]["finished"], "training itself completed on both ranks"
    noticed = stderr.first("ended monitoring but had not exited")
    assert noticed is not None, err
    all_done = max(r["done_time"] for r in found.values())
    assert noticed - all_done <= 2 + 1, err
    assert "rank 1 (local rank 1" in err and "rank_exit_timeout is 2 s from --ft-rank-exit-timeout" in err
    assert "_stuck_at_exit" in (tmp_path / "logs" / "stacks" / "stacks-rank1-attempt0.txt").read_text()
    assert not pid_alive(found[(1, 0)]["pid"]), "the rank stuck at exit was killed"
