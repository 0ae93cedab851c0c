"""When restarting cannot help: real ft_launcher jobs of train.py (2 ranks, gloo) whose data fails the same way in
every attempt, or at another step in each; the line, the exit code and the run files that survive, and
``ft_launcher --status`` on the run directory."""

from __future__ import annotations

import json
import re

import pytest
from ft_helpers.paths import REPO
from ft_helpers.train_jobs import FT_LAUNCHER, run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]
HELPERS = str(REPO / "tests" / "ft_helpers")
RUN = ["trainer.max_steps=60", "trainer.log_every=10", "trainer.eval_every=0", "checkpoint.every=2",
       "trainer.progress=false", "fault_tolerance=demo", "data.num_workers=0", "data.batch_size=16",
       "data.dataset.num_samples=512"]
CORRUPT = ["data.dataset._target_=failing_data.CorruptSample", "+data.dataset.bad_index=300"]


def job(run_dir, *overrides, restarts: int = 10, timeout: float = 120) -> tuple[int, str]:
    return run_to_end([*FT_LAUNCHER, f"--max-restarts={restarts}", "train.py", *RUN, *overrides,
                       f"hydra.run.dir={run_dir}"], env_extra={"PYTHONPATH": HELPERS}, timeout=timeout)


def launches(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "ft_launches.jsonl").read_text().splitlines()]


def test_a_sample_that_fails_every_attempt_stops_with_93_naming_the_step_and_the_error(tmp_path):
    code, out = job(tmp_path, *CORRUPT)
    assert code == 93, out[-4000:]
    line = next(line for line in out.splitlines() if "restarting cannot help:" in line)
    assert re.search(r"attempts 1 and 2 failed the same way, both from step \d+ \(the last checkpoint\)", line), line
    assert "ValueError: corrupt sample 300 (failing_data.py:" in line
    (launch,) = launches(tmp_path)
    assert len(launch["attempts"]) <= 3 and launch["exit_code"] == 93 and launch["verdict"] in line
    assert list((tmp_path / "checkpoints").glob("step_*.pt")), "the checkpoints before the bad sample survive"
    # What happened, from the run's own files.
    code, report = run_to_end([FT_LAUNCHER[0], "--status", str(tmp_path)], timeout=30)
    assert code == 0, report
    assert "launch 1 attempt 1: failed" in report and "ValueError: corrupt sample 300" in report
    assert "restarts in the last hour: 2" in report
    assert re.search(r"progress: last checkpoint at step \d+", report), report
    assert "last error: attempt 2: ValueError: corrupt sample 300" in report
    assert "stragglers: none seen" in report
    assert "verdict: stopped: restarting cannot help (exit code 93): restarting cannot help: attempts 1 and 2" in report


def test_no_progress_alone_stops_after_its_count(tmp_path):
    code, out = job(tmp_path, *CORRUPT, "fault_tolerance.stop_on_repeated_failure=false",
                    "fault_tolerance.max_no_progress_attempts=2")
    assert code == 93, out[-4000:]
    assert re.search(r"2 attempts in a row \(1, 2\) completed no checkpoint, so the job never got past step \d+ "
                     r"\(the last checkpoint\); last error: attempt 2: ValueError: corrupt sample 300", out), out[-3000:]
    assert len(launches(tmp_path)[0]["attempts"]) == 3


def test_with_both_rules_off_the_whole_budget_is_used(tmp_path):
    code, out = job(tmp_path, *CORRUPT, "fault_tolerance.stop_on_repeated_failure=false",
                    "fault_tolerance.max_no_progress_attempts=0")
    assert code == 1, out[-4000:]
    assert "the restart budget is spent (--max-restarts=10)" in out and "restarting cannot help:" not in out
    assert len(launches(tmp_path)[0]["attempts"]) == 11


KILLS = ["data.dataset._target_=failing_data.KilledAtRandom", "+data.dataset.seed_kills=7", "+data.dataset.low=5",
         "+data.dataset.high=12", "+data.dataset.rank=1", "trainer.max_steps=80"]


def test_a_kill_at_a_random_step_in_each_of_5_attempts_finishes(tmp_path):
    code, out = job(tmp_path, *KILLS, timeout=140)
    assert code == 0, out[-4000:]
    assert "restarting cannot help" not in out
    attempts = launches(tmp_path)[0]["attempts"]
    assert len(attempts) == 6 and attempts[-1]["outcome"] == "finished"
    assert json.loads((tmp_path / "final_metrics.json").read_text())["step"] == 80


def test_a_restart_storm_ends_the_job_with_93(tmp_path):
    code, out = job(tmp_path, *KILLS, "fault_tolerance.restart_storm_restarts=2")
    assert code == 93, out[-4000:]
    assert re.search(r"restarting cannot help: a restart storm, 3 restarts within 10 min \(more than "
                     r"fault_tolerance.restart_storm_restarts=2\); last error: attempt 2: rank 1", out), out[-3000:]
    assert len(launches(tmp_path)[0]["attempts"]) == 3
