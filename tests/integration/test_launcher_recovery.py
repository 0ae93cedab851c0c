"""ft_launcher end to end: healthy runs, hangs, silent ranks, crashes, the restart budget, FT precedence."""

from __future__ import annotations

import re

import pytest
from ft_helpers.launches import HYDRA, PLAIN, records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = ["--standalone", "--nproc-per-node=2", "--ft-workload-check-interval=0.1"]


def test_healthy_run_exits_0(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run([*FAST, PLAIN, f"out={out}"], out)
    assert code == 0, err
    found = records(out)
    assert sorted(found) == [(0, 0), (1, 0)]
    assert all(r["finished"] and r["steps"] == 5 and r["world_size"] == 2 for r in found.values())
    assert "attempt 0 started: world size 2" in err
    assert "finished after" in err


def test_hung_rank_is_detected_restarted_and_the_run_finishes(launches, tmp_path):
    """Hydra override sets the timeout; the run dir is the same for both attempts; stacks are kept."""
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=2", *FAST, HYDRA, "fault_tolerance.rank_heartbeat_timeout=1.5",
                              "+fault.hang=1@0"], out)
    assert code == 0, err
    run_dir = out / "run"
    found = records(run_dir / "ranks")
    assert found[(1, 0)]["steps"] == 1, "rank 1 hung in step 2 of attempt 0"
    assert found[(0, 1)]["finished"] and found[(1, 1)]["finished"]
    assert "sent no heartbeat for" in err
    assert "rank_heartbeat_timeout is 1.5 s from override fault_tolerance.rank_heartbeat_timeout=1.5" in err
    # What the workers' cfg.fault_tolerance says is what the monitor enforced.
    for record in found.values():
        assert record["ft_cfg"]["rank_heartbeat_timeout"] == 1.5
        assert record["ft_cfg"] == record["monitor_cfg"]
    # Each worker checked that Hydra's output dir is PULSETRAIN_RUN_DIR (it exits non-zero otherwise).
    assert list((run_dir / "stacks").glob("stacks-rank1-*.txt")), "the hung rank's stacks are kept in the run dir"
    assert "behaviour.py" in err, "the hung rank's top frames are shown"
    assert "restarting the worker group (restart 1 of 2)" in err


def test_ft_flag_beats_hydra_override(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=1", *FAST, "--ft-rank-heartbeat-timeout=1.5", HYDRA,
                              "fault_tolerance.rank_heartbeat_timeout=600", "+fault.hang=0@0"], out)
    assert code == 0, err
    assert "rank_heartbeat_timeout is 1.5 s from --ft-rank-heartbeat-timeout" in err
    gaps = [float(m) for m in re.findall(r"sent no heartbeat for ([0-9.]+) s", err)]
    assert gaps and all(1.5 <= gap < 600 for gap in gaps), "found after the flag's timeout, not the override's"
    for record in records(out / "run" / "ranks").values():
        assert record["ft_cfg"]["rank_heartbeat_timeout"] == 1.5, "the flag reached the workers' config"
        assert record["monitor_cfg"]["rank_heartbeat_timeout"] == 1.5


def test_rank_without_first_heartbeat_hits_the_initial_timeout(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=1", *FAST, "--ft-initial-rank-heartbeat-timeout=1", PLAIN,
                              f"out={out}", "silent=1@0"], out)
    assert code == 0, err
    assert "sent no first heartbeat" in err
    assert "initial_rank_heartbeat_timeout is 1 s from --ft-initial-rank-heartbeat-timeout" in err
    assert records(out)[(1, 1)]["finished"]


def test_crash_restarts_and_names_the_crashed_rank(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=1", *FAST, PLAIN, f"out={out}", "crash=1@0"], out)
    assert code == 0, err
    assert "rank 1 (local rank 1," in err and "exited with code 13" in err
    assert records(out)[(0, 1)]["finished"]


def test_spent_budget_exits_1(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=1", *FAST, PLAIN, f"out={out}", "crash=1@*"], out)
    assert code == 1, err
    assert "restart budget is spent" in err
    assert {attempt for _, attempt in records(out)} == {0, 1}


def test_without_fork_server_hangs_and_restarts_work_too(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--no-fork-server", "--max-restarts=1", *FAST, "--ft-rank-heartbeat-timeout=1.5",
                              PLAIN, f"out={out}", "hang=0@0"], out)
    assert code == 0, err
    assert "sent no heartbeat for" in err
    assert records(out)[(0, 1)]["finished"]


def test_fault_tolerance_disabled_means_crash_restarts_only(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=1", *FAST, HYDRA, "fault_tolerance.enabled=false",
                              "+fault.crash=0@0"], out)
    assert code == 0, err
    assert "no hang detection" in err
    assert all(r["monitor_cfg"] is None for r in records(out / "run" / "ranks").values())


def test_several_consecutive_restarts_are_reliable(launches, tmp_path):
    """Each restart forms a new gloo group (the rendezvous store is not shared with the workers)."""
    out = tmp_path / "out"
    code, err = launches.run(["--max-restarts=4", *FAST, "--ft-rank-heartbeat-timeout=1.5", PLAIN, f"out={out}",
                              "crash=0@0+1@1+0@2", "hang=1@3"], out)
    assert code == 0, err
    found = records(out)
    assert found[(0, 4)]["finished"] and found[(1, 4)]["finished"]
    assert err.count("restarting the worker group") == 4
