"""Sweeps the Hydra way: ``python train.py -m hydra/launcher=ft`` runs every point as a fault-tolerant job."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ft_helpers.strict_json import strict_json
from ft_helpers.train_jobs import REPO, Output, clean_env, wait_until

from train.checkpoint.store import CheckpointStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
QUIET = ["data.num_workers=0", "trainer.progress=false"]
HANG_SWEEP = ["hydra/launcher=ft", "hydra.launcher.nproc_per_node=2", "hydra.launcher.max_restarts=1", "fault=hang",
              "fault.rank=1", "fault.step=60", "fault_tolerance=demo", "fault_tolerance.rank_heartbeat_timeout=1,3",
              "trainer.max_steps=100"]


def start_sweep(sweep_dir: Path, *overrides: str) -> Output:
    proc = subprocess.Popen([sys.executable, "train.py", "-m", *overrides, *QUIET, f"hydra.sweep.dir={sweep_dir}"],
                            cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    return Output(proc)  # each point's ft_launcher dies with the sweep (parent-death signal), so killing it is enough


def sweep(sweep_dir: Path, *overrides: str, timeout: float = 180) -> tuple[int, str, dict]:
    code, out = start_sweep(sweep_dir, *overrides).finish(timeout)
    summary = sweep_dir / "sweep_summary.json"
    return code, out, json.loads(summary.read_text()) if summary.exists() else {}


def launches(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "ft_launches.jsonl").read_text().splitlines()]


def test_each_point_restarts_once_with_its_own_timeout_and_a_relaunch_trains_nothing(tmp_path):
    code, out, summary = sweep(tmp_path, *HANG_SWEEP)
    assert code == 0, out[-4000:]
    points = summary["points"]
    assert [p["point"] for p in points] == ["fault_tolerance.rank_heartbeat_timeout=1",
                                            "fault_tolerance.rank_heartbeat_timeout=3"]
    for point, timeout in zip(points, (1.0, 3.0), strict=True):
        assert point["outcome"] == "finished" and point["attempts"] == 2, point
        (detection,) = point["detections"]
        assert detection["kind"] == "heartbeat_timeout" and detection["timeout"] == timeout, detection
        assert timeout <= detection["gap"] < timeout + 1.5, detection
        assert "fault_tolerance.rank_heartbeat_timeout" in detection["timeout_source"]
        assert point["time_lost"] > 0
    before = {p["run_dir"]: launches(Path(p["run_dir"])) for p in points}

    code, out, summary = sweep(tmp_path, *HANG_SWEEP, timeout=90)
    assert code == 0, out[-4000:]
    assert [p["outcome"] for p in summary["points"]] == ["already finished"] * 2
    assert out.count("already finished") >= 2 and "attempt 0 started" not in out
    assert {p["run_dir"]: launches(Path(p["run_dir"])) for p in points} == before  # no new launch


def test_two_jobs_run_both_points_at_once(tmp_path):
    code, out, summary = sweep(tmp_path, *HANG_SWEEP, "hydra.launcher.n_jobs=2")
    assert code == 0, out[-4000:]
    first, second = summary["points"]
    assert first["attempts"] == second["attempts"] == 2
    assert [d["timeout"] for p in (first, second) for d in p["detections"]] == [1.0, 3.0]
    # The recorded spans overlap: each started before the other ended.
    assert first["started_at"] < second["ended_at"] and second["started_at"] < first["ended_at"], summary
    assert (tmp_path / "0" / "ft_launcher.log").exists() and (tmp_path / "1" / "ft_launcher.log").exists()


def test_sigterm_stops_the_running_point_and_a_relaunch_resumes_it_from_its_checkpoint(tmp_path):
    args = ["hydra/launcher=ft", "trainer.max_steps=100", "trainer.log_every=10", "checkpoint.every=20",
            "fault=slow", "fault.seconds=0.05", "seed=1,2"]
    job = start_sweep(tmp_path, *args)
    metrics = tmp_path / "0" / "metrics.jsonl"
    wait_until(lambda: metrics.exists() and any(json.loads(line)["step"] >= 30 for line in
                                                metrics.read_text().splitlines() if line.endswith("}")),
               120, "point 0 to reach step 30")
    job.proc.send_signal(signal.SIGTERM)
    code, out = job.finish(60)
    assert code == 75, out[-4000:]
    stopped_at = CheckpointStore(tmp_path / "0" / "checkpoints").checkpoints()[-1].step
    assert 30 <= stopped_at < 100
    summary = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert [p["outcome"] for p in summary["points"]] == ["stopped", "not started"], summary
    assert json.loads((tmp_path / "0" / "point.json").read_text())["status"] == "stopped"

    code, out, summary = sweep(tmp_path, *args, timeout=120)
    assert code == 0, out[-4000:]
    assert [p["outcome"] for p in summary["points"]] == ["finished", "finished"]
    assert "resuming it" in out
    log = (tmp_path / "0" / "train_rank0.log").read_text()
    assert f": step {stopped_at}, epoch" in log.split("resumed from", 1)[1].splitlines()[0], log[-2000:]
    assert [launch["exit_code"] for launch in launches(tmp_path / "0")] == [75, 0]


def test_optuna_search_of_three_trials_each_surviving_a_crash(tmp_path):
    code, out, summary = sweep(
        tmp_path, "hydra/sweeper=optuna", "hydra/launcher=ft", "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=1",
        "hydra.sweeper.sampler.seed=7", "optim.optimizer.lr=interval(0.001,0.1)", "trainer.optimized_metric=val_loss",
        "trainer.max_steps=20", "trainer.eval_every=10", "checkpoint.every=10", "hydra.launcher.max_restarts=1",
        "fault=kill", "fault.rank=0", "fault.step=15", timeout=200)
    assert code == 0, out[-4000:]
    points = summary["points"]
    assert len(points) == 3 and all(p["outcome"] == "finished" and p["attempts"] == 2 for p in points), points
    values = [p["value"] for p in points]
    assert all(isinstance(v, float) for v in values), values
    for point in points:
        assert point["value"] == json.loads((Path(point["run_dir"]) / "final_metrics.json").read_text())["val_loss"]
    best = (tmp_path / "optimization_results.yaml").read_text()
    assert f"best_value: {min(values)}" in best, best


def test_hydras_own_launcher_warns_once_that_points_run_unwatched_and_returns_the_metric(tmp_path):
    code, out, _ = sweep(tmp_path, "seed=1,2", "trainer.max_steps=2", "trainer.log_every=1",
                         "trainer.optimized_metric=loss", timeout=120)
    assert code == 0, out[-4000:]
    assert out.count("add hydra/launcher=ft to run each point as its own fault-tolerant job") == 1, out[-4000:]
    assert all((tmp_path / n / "final_metrics.json").exists() for n in ("0", "1"))


def test_a_bad_launcher_option_is_one_line_and_starts_nothing(tmp_path):
    code, out, summary = sweep(tmp_path, "hydra/launcher=ft", "+hydra.launcher.ft.rank_heartbeat_timout=3",
                               "seed=1,2", timeout=60)
    assert code == 2 and "Traceback" not in out, out
    assert "hydra.launcher.ft.rank_heartbeat_timout: not a fault-tolerance setting" in out
    assert not summary and not (tmp_path / "0").exists()


def test_a_failed_point_fails_a_basic_sweep_with_exit_1_and_no_traceback(tmp_path):
    code, out, summary = sweep(tmp_path, "hydra/launcher=ft", "fault=exception", "fault.rank=0", "fault.step=1",
                               "trainer.max_steps=3", timeout=90)
    assert code == 1, out[-4000:]
    assert "Traceback (most recent call last)" not in out.split("injected fault", 1)[1].split("sweep summary", 1)[1]
    assert [p["outcome"] for p in summary["points"]] == ["failed"] and summary["exit_code"] == 1



def test_a_point_that_diverges_is_failed_and_the_summary_stays_strict_json(tmp_path):
    code, out, _ = sweep(tmp_path, "hydra/launcher=ft", "hydra.launcher.nproc_per_node=1",
                         "hydra.launcher.max_restarts=2", "optim.optimizer.lr=1e-3,1e6", "trainer.max_steps=40",
                         "trainer.log_every=5", timeout=150)
    assert code == 1, out[-4000:]  # a failed point, none left to run
    summary = strict_json((tmp_path / "sweep_summary.json").read_text())
    outcomes = {p["point"]: p["outcome"] for p in summary["points"]}
    assert outcomes == {"optim.optimizer.lr=0.001": "finished", "optim.optimizer.lr=1000000.0": "failed"}, outcomes
    diverged = next(p for p in summary["points"] if p["outcome"] == "failed")
    assert diverged["attempts"] == 1, diverged  # exit 93: restarting cannot help, so no restart
    assert "non-finite loss at step" in out
    final = strict_json((Path(diverged["run_dir"]) / "metrics.jsonl").read_text().splitlines()[-1])
    assert final["step"] <= 40
