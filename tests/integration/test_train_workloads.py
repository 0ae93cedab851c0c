"""The language model under ft_launcher: a killed rank recovers to the weights of an uninterrupted run
(also with gradient accumulation and loader workers); TensorBoard files read back with the logged values;
the run report's marks come from the run's own files."""

from __future__ import annotations

import json
import struct

import pytest
from ft_helpers.train_jobs import FAST_DETECTION, FT_LAUNCHER, final_checkpoint, launch, metrics

pytestmark = pytest.mark.integration

# experiment=gpt_small shrunk to seconds: a 2-layer model of width 32 on 32-byte windows of 0.3 MB of text.
STEPS = 40
TINY_GPT = ["experiment=gpt_small", f"trainer.max_steps={STEPS}", "trainer.log_every=5", "trainer.eval_every=10",
            "trainer.eval_batches=2", "checkpoint.every=10", "model.width=32", "model.depth=2", "model.heads=2",
            "data.dataset.context=32", "data.batch_size=8", "data.dataset.max_bytes=300000",
            "optim.scheduler.warmup_steps=5", "sample.new_tokens=16", "logger=[jsonl,tensorboard]"]
VARIANTS = {"plain": ["data.num_workers=0"], "accum_workers": ["trainer.grad_accum=2", "data.num_workers=2"]}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, tmp_path_factory):
    """(overrides, uninterrupted run dir) per variant, computed once."""
    overrides = [*TINY_GPT, *VARIANTS[request.param]]
    run_dir = tmp_path_factory.mktemp(f"gpt-{request.param}-reference")
    code, out = launch(FT_LAUNCHER, run_dir, *FAST_DETECTION, *overrides, timeout=180)
    assert code == 0, out[-4000:]
    return overrides, run_dir


def test_killed_rank_recovers_to_the_weights_of_an_uninterrupted_run(variant, tmp_path):
    import torch

    overrides, reference = variant
    code, out = launch([*FT_LAUNCHER, "--max-restarts=1"], tmp_path, *FAST_DETECTION, *overrides,
                       "fault=kill", "fault.rank=1", "fault.step=28", timeout=180)
    assert code == 0, out[-4000:]
    got, want = final_checkpoint(tmp_path), final_checkpoint(reference)
    assert got["step"] == want["step"] == STEPS
    assert all(torch.equal(got["model"][k], want["model"][k]) for k in want["model"])
    events = [m for m in metrics(tmp_path) if "event" in m]
    fault = next(e for e in events if e["event"] == "fault_injected")
    assert (fault["kind"], fault["rank"], fault["step"], fault["attempt"]) == ("kill", 1, 28, 0)
    restart = next(e for e in events if e["event"] == "attempt_start")
    assert (restart["attempt"], restart["resumed_from"], restart["step"]) == (1, 20, 20)
    final = json.loads((tmp_path / "final_metrics.json").read_text())
    assert final["step"] == STEPS and final["val_loss"] == [m for m in metrics(tmp_path) if "val_loss" in m][-1]["val_loss"]
    assert "sample 0:" in out
    # TensorBoard: one curve across both attempts, each step once (attempt 1 purged what it redid).
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(tmp_path / "tensorboard"))
    board.Reload()
    losses = [m for m in metrics(tmp_path) if "loss" in m]
    assert [m["attempt"] for m in losses if m["step"] == 25] == [0, 1]  # logged, lost with the kill, redone
    last = {m["step"]: m["loss"] for m in losses}
    assert [e.step for e in board.Scalars("loss")] == sorted(last)
    assert [e.value for e in board.Scalars("loss")] == pytest.approx([last[s] for s in sorted(last)], rel=1e-6)


def test_validation_loss_falls_and_tensorboard_reads_back_the_logged_values(variant):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, reference = variant
    logged = metrics(reference)
    val = [m["val_loss"] for m in logged if "val_loss" in m]
    assert len(val) == STEPS // 10 and val[-1] < val[0]
    board = EventAccumulator(str(reference / "tensorboard"))
    board.Reload()
    for name in ("loss", "val_loss", "val_ppl"):
        want, got = [m for m in logged if name in m], board.Scalars(name)
        assert [e.step for e in got] == [m["step"] for m in want], name
        assert [e.value for e in got] == pytest.approx([m[name] for m in want], rel=1e-6), name


def test_report_marks_come_from_the_run_records_and_the_png_has_the_expected_size(tmp_path):
    from train.tools.report import DPI, FIGSIZE, draw
    from train.tools.run_records import read_run

    overrides = [*TINY_GPT, *VARIANTS["plain"]]
    code, out = launch([*FT_LAUNCHER, "--max-restarts=1"], tmp_path, *FAST_DETECTION, *overrides,
                       "fault=hang", "fault.rank=1", "fault.step=15", timeout=180)
    assert code == 0, out[-4000:]
    records = read_run(tmp_path)
    (fault,) = records.of_kind("fault")
    assert (fault.step, fault.rank, fault.detail, fault.attempt) == (15, 1, "hang", 0)
    # The monitor finds the silent rank, and often rank 0 too (blocked in the all-reduce, it stops beating as well).
    detections = records.of_kind("detection")
    assert detections and {(d.attempt, d.rank in (0, 1)) for d in detections} == {(0, True)}
    (restart,) = records.of_kind("restart")
    assert (restart.step, restart.attempt) == (10, 1)
    assert fault.time < min(d.time for d in detections) <= max(d.time for d in detections) < restart.time
    assert [(m.step, m.attempt) for m in records.of_kind("checkpoint")] == [(10, 0), (20, 1), (30, 1), (40, 1)]
    png = draw(records, tmp_path / "report.png")
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))


def test_compile_runs_under_the_fork_server_and_compiles_during_start_up(tmp_path):
    """torch.compile in ranks forked by ft_launcher's fork server: it compiles before the first heartbeat."""
    code, out = launch(FT_LAUNCHER, tmp_path, "trainer.compile=true", "trainer.max_steps=4", "trainer.eval_every=2",
                       "checkpoint.every=2", "data.num_workers=0", "model.hidden=32", timeout=400)
    assert code == 0, out[-4000:]
    assert "torch.compile: model compiled in" in out
    assert final_checkpoint(tmp_path)["step"] == 4
    assert not any(k.startswith("_orig_mod") for k in final_checkpoint(tmp_path)["model"])
