"""Real ft_launcher (and torchrun) jobs of 2 ranks on gloo: every fault recovers to the exact weights
of an uninterrupted run; SIGTERM stops cleanly (75) and a relaunch continues; calibrated timeouts
are saved and protect the next launch."""

from __future__ import annotations

import json
import signal
import time

import pytest
import torch
from ft_helpers.train_jobs import (
    FAST_DETECTION,
    FT_LAUNCHER,
    MAX_STEPS,
    TORCHRUN,
    alive,
    assert_same_weights,
    descendants,
    final_checkpoint,
    finish,
    launch,
    metrics,
    start,
)

from train.checkpoint.store import CheckpointStore

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "fault,detected",
    [
        (["fault=hang", "fault.rank=1", "fault.step=120"], "no heartbeat"),
        (["fault=kill", "fault.rank=1", "fault.step=120"], "attempt 1 started"),
        (["fault=exception", "fault.rank=0", "fault.step=120"], "InjectedFault"),
        (["fault=hang_in_checkpoint", "fault.rank=0", "fault.step=120"], "no heartbeat"),
    ],
    ids=["hang", "kill", "exception", "hang_in_checkpoint"],
)
def test_fault_recovers_to_the_weights_of_an_uninterrupted_run(reference, tmp_path, fault, detected):
    code, out = launch([*FT_LAUNCHER, "--max-restarts=2"], tmp_path, *FAST_DETECTION, *fault)
    assert code == 0, out[-4000:]
    assert detected in out
    assert_same_weights(tmp_path, reference)
    attempts = {m["attempt"] for m in metrics(tmp_path)}
    assert attempts == {0, 1}
    resumed = [m["step"] for m in metrics(tmp_path) if m["attempt"] == 1]
    assert min(resumed) <= 110  # redone from the last checkpoint before the fault, not from scratch
    assert not list((tmp_path / "checkpoints").glob(".step_*"))  # no half-written file survives


def test_a_hang_inside_the_checkpoint_section_is_named_with_its_timeout_source(reference, tmp_path):
    sections = "fault_tolerance.rank_section_timeouts.checkpoint=3"
    code, out = launch([*FT_LAUNCHER, "--max-restarts=1"], tmp_path, "fault=hang_in_checkpoint", "fault.rank=0",
                       "fault.step=120", "fault_tolerance.rank_heartbeat_timeout=null",
                       "fault_tolerance.rank_section_timeouts.step=5", sections)
    assert code == 0, out[-4000:]
    assert "rank 0 (local rank 0" in out and "has been in section 'checkpoint' for 3." in out
    assert f"rank_section_timeouts.checkpoint is 3 s from override {sections}" in out
    assert "no heartbeat" not in out  # only the section timeout was set
    assert_same_weights(tmp_path, reference)


def test_sigterm_on_one_rank_stops_all_then_relaunch_continues(reference, tmp_path):
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "fault=sigterm", "fault.rank=1", "fault.step=120")
    assert code == 75, out[-4000:]
    stopped = final_checkpoint(tmp_path)["step"]
    assert 120 <= stopped < MAX_STEPS  # agreed within two stop checks (about every 0.2 s of steps)
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "fault=sigterm", "fault.rank=1", "fault.step=120")
    assert code == 0, out[-4000:]
    assert f"resumed from step_{stopped:08d}" in out
    assert_same_weights(tmp_path, reference)


def test_sigterm_to_the_launcher_mid_run_exits_75_and_relaunch_matches(reference, tmp_path):
    """Ranks read through DataLoader worker processes: SIGTERM reaches the ranks, not their loaders."""
    proc = start(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "data.num_workers=2")
    deadline = time.monotonic() + 60
    metrics_file = tmp_path / "metrics.jsonl"
    # Wait for evidence of training (a logged step >= 30), not for a fixed time.
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics_file.exists() and any(m.get("step", 0) >= 30 for m in metrics(tmp_path) if "loss" in m):
            break
        time.sleep(0.02)
    below = descendants(proc.pid)
    assert len(below) >= 1 + 2 + 2 * 2, f"fork server, 2 ranks, 2 loader workers each: {below}"
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc, 60)
    assert code == 75, f"exit code {code}:\n{out[-6000:]}"
    assert "DataLoader worker" not in out, out[-6000:]
    assert not any(alive(pid) for pid in below), "a loader worker outlived the job"
    stopped = final_checkpoint(tmp_path)["step"]
    assert 30 <= stopped < MAX_STEPS
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "data.num_workers=2")
    assert code == 0, out[-4000:]
    assert f"resumed from step_{stopped:08d}" in out
    assert_same_weights(tmp_path, reference)


def test_torchrun_restart_resumes_exactly(reference, tmp_path):
    code, out = launch([*TORCHRUN, "--max-restarts=1"], tmp_path, "fault=kill", "fault.rank=1", "fault.step=120")
    assert code == 0, out[-4000:]
    assert "resumed from step_00000100" in out
    assert_same_weights(tmp_path, reference)


def test_calibrated_timeouts_are_saved_and_protect_the_next_launch(tmp_path):
    calibrate = ["fault_tolerance=calibrate", "fault_tolerance.calibration_steps=5", "trainer.max_steps=60",
                 "checkpoint.every=20", "fault_tolerance.calculated_timeout_floor=1"]
    code, out = launch(FT_LAUNCHER, tmp_path, *calibrate)
    assert code == 0, out[-4000:]
    assert "calculated heartbeat timeouts" in out
    saved = json.loads((tmp_path / "checkpoints" / "ft_state.json").read_text())["calculated"]
    assert saved["initial"] > 0 and saved["subsequent"] > 0
    assert final_checkpoint(tmp_path)["ft"]["calculated"] == saved
    # Timeouts in the config are null, so only the reloaded calculated ones can find this hang.
    code, out = launch([*FT_LAUNCHER, "--max-restarts=1"], tmp_path, *calibrate, "trainer.max_steps=90",
                       "fault=hang", "fault.rank=1", "fault.step=70")
    assert code == 0, out[-4000:]
    assert "restored calculated heartbeat timeouts" in out
    # The hang is inside the `step` section, calibrated too: whichever calculated timeout fires first reports it.
    report = next(line for line in out.splitlines() if "rank 1 (local rank 1" in line)
    assert ("no heartbeat" in report or "in section 'step'" in report) and "from calculated" in report, report
    assert final_checkpoint(tmp_path)["step"] == 90


def test_corrupt_newest_checkpoint_falls_back_on_every_rank(reference, tmp_path):
    import shutil

    shutil.copytree(reference / "checkpoints", tmp_path / "checkpoints")
    newest = CheckpointStore(tmp_path / "checkpoints").checkpoints()[-1]
    newest.path.write_bytes(newest.path.read_bytes()[:1000])  # a torn write
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION)
    assert code == 0, out[-4000:]
    assert "is corrupt" in out and "resumed from step_00000350" in out
    assert (tmp_path / "checkpoints" / (newest.path.name + ".corrupt")).exists()
    assert_same_weights(tmp_path, reference)  # steps 351..400 redone, bit for bit


def test_incompatible_checkpoint_stops_at_once_with_exit_2_and_keeps_every_checkpoint(reference, tmp_path):
    """Bad input a restart cannot fix: one message, no retries, no checkpoint touched."""
    import hashlib
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run_dir / "checkpoints").iterdir()}
    code, out = launch([*FT_LAUNCHER, "--max-restarts=3"], run_dir, "model.hidden=128", *FAST_DETECTION)
    assert code == 2, out[-4000:]
    assert "incompatible config" in out and "attempt 1 started" not in out
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run_dir / "checkpoints").iterdir()}
    assert after == before


def test_a_checkpoint_weights_only_refuses_is_not_renamed_and_stops_with_exit_2(reference, tmp_path):
    """An intact file this torch will not load (a type it refuses) is no corruption: no fallback, no rename."""
    import argparse
    import hashlib
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    store = CheckpointStore(run_dir / "checkpoints", keep_last=10)
    newest = store.checkpoints()[-1]
    state = {k: v for k, v in torch.load(newest.path, weights_only=True).items() if k not in ("format_version", "step")}
    newest.path.unlink()
    store.save(newest.step, {**state, "extra": argparse.Namespace(note="not on the allowlist")})
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run_dir / "checkpoints").iterdir()}
    code, out = launch([*FT_LAUNCHER, "--max-restarts=2"], run_dir, *FAST_DETECTION)
    assert code == 2, out[-4000:]
    assert "refuses it" in out and "attempt 1 started" not in out and "is corrupt" not in out
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run_dir / "checkpoints").iterdir()}
    assert after == before
