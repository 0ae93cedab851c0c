"""What a user sees when a restart cannot help or the failure is another rank's doing: real ft_launcher jobs
(2 ranks on gloo), asserting the line, the exit code, and the run files (strict JSON) that survive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ft_helpers.launches import HYDRA, WORKERS, records
from ft_helpers.strict_json import strict_json_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = ["--standalone", "--nproc-per-node=2", "--ft-workload-check-interval=0.1"]
VERDICT = str(WORKERS / "verdict_worker.py")


def launch_lines(run_dir: Path) -> list[dict]:
    """ft_launches.jsonl, read with a strict parser (NaN, Infinity refused)."""
    return strict_json_lines((run_dir / "ft_launches.jsonl").read_text())


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if " ERROR " in line]


def test_a_worker_exiting_93_is_not_restarted_and_the_job_exits_93(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=3", *FAST, VERDICT, "+fault.mode=cannot_help"], out)
    assert code == 93, err
    assert "exited with code 93" in err
    assert "exit code 93 means restarting cannot help (see the worker's message above): not restarting" in err
    assert "stopped: restarting cannot help after" in err and "exit code 93" in err
    assert "restarting the worker group" not in err
    assert sorted(records(out / "run" / "ranks")) == [(0, 0), (1, 0)], "one attempt only"
    (launch,) = launch_lines(out / "run")
    assert launch["exit_code"] == 93 and launch["outcome"] == "restarting cannot help"


def test_a_rank_that_exits_0_early_is_named_not_the_peer_that_then_fails(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run([*FAST, VERDICT, "+fault.mode=early_exit"], out)
    assert code == 1, err
    assert re.search(r"ERROR rank 0 \(local rank 0, pid \d+\) exited 0 while its peers were still running", err), err
    assert "its collectives fail without rank 0" in err
    assert not any("rank 1 (local rank 1" in line for line in error_lines(err)), "the peer gets no ERROR"
    assert "rank 0 exited early (exit 0), then rank 1 failed (exit 1)" in err  # the summary's cause
    (launch,) = launch_lines(out / "run")
    assert launch["attempts"][0]["cause"] == "rank 0 exited early (exit 0), then rank 1 failed (exit 1)"


def test_a_hang_on_one_rank_of_two_blames_it_and_the_waiting_peer_gets_one_line(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=1", *FAST, HYDRA, "fault_tolerance.rank_heartbeat_timeout=1.5",
                              "+fault.hang=1@0"], out)
    assert code == 0, err
    errors = error_lines(err)
    assert any("rank 1 (local rank 1" in line and "sent no heartbeat" in line for line in errors), err
    assert not any("rank 0 (local rank 0" in line for line in errors), "the waiting rank is not an ERROR"
    # The peer, when detected in the same check, is one line that says what it was doing.
    for line in err.splitlines():
        if "rank 0 (local rank 0" in line and "heartbeat" in line:
            assert "waiting in a collective" in line and "waiting for rank 1" in line, line
    attempts = launch_lines(out / "run")[0]["attempts"]
    assert attempts[0]["cause"] == "heartbeat timeout on rank 1" and attempts[0]["detection"]["rank"] == 1
