"""train.run(cfg) in this process (one rank): outputs, exact resume, stop on SIGTERM, bad checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

import train
from ft import ExitCode
from train.checkpoint.store import CheckpointStore

COMMON = ("trainer.max_steps=12", "trainer.log_every=1", "trainer.eval_every=6", "checkpoint.every=4",
          "trainer.progress=false")


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    newest = CheckpointStore(run_dir / "checkpoints").checkpoints()[-1]
    return torch.load(newest.path, weights_only=True)["model"]


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 12-step run (computed once for this module)."""
    from ft_helpers.paths import CONF_DIR
    from hydra import compose, initialize_config_dir

    run_dir = tmp_path_factory.mktemp("reference")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*COMMON, f"run_dir={run_dir}"])
    assert train.run(cfg) == ExitCode.FINISHED
    return run_dir


def test_outputs_of_a_run(reference):
    store = CheckpointStore(reference / "checkpoints", keep_last=3)
    assert [c.step for c in store.checkpoints()] == [4, 8, 12]
    lines = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    steps = [m["step"] for m in lines if "loss" in m]
    assert steps == list(range(1, 13)) and {"time", "attempt", "loss", "steps_per_s"} <= lines[0].keys()
    assert [m["step"] for m in lines if "val_loss" in m] == [6, 12]
    assert (reference / "config_tree.log").read_text().startswith("config")
    assert json.loads((reference / "checkpoints" / "ft_state.json").read_text())["format"]


def test_resume_in_two_parts_equals_uninterrupted(compose_config, reference, tmp_path):
    # First 6 steps of the 12-step schedule (cosine T_max stays 12), then resume to the end.
    assert train.run(compose_config(*COMMON, f"run_dir={tmp_path}",
                                    "fault=sigterm", "fault.step=6", "fault.rank=0")) == ExitCode.STOPPED_ON_REQUEST
    assert [c.step for c in CheckpointStore(tmp_path / "checkpoints").checkpoints()] == [4, 6]
    assert train.run(compose_config(*COMMON, f"run_dir={tmp_path}")) == ExitCode.FINISHED
    assert_same(final_weights(tmp_path), final_weights(reference))
    attempts = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert attempts.count(7) == 1  # the second launch started after the saved step


def test_resume_from_a_finished_run_does_nothing(compose_config, reference, tmp_path):
    import shutil

    shutil.copytree(reference, tmp_path / "run")
    assert train.run(compose_config(*COMMON, f"run_dir={tmp_path / 'run'}")) == ExitCode.FINISHED
    assert_same(final_weights(tmp_path / "run"), final_weights(reference))


def test_incompatible_checkpoint_is_refused_and_kept(compose_config, reference, tmp_path):
    import shutil

    shutil.copytree(reference, tmp_path / "run")
    before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    with pytest.raises(train.CheckpointError, match="incompatible config"):
        train.run(compose_config(*COMMON, "model=conv1d", f"run_dir={tmp_path / 'run'}"))
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == before
