"""train.py as a user runs it: plain `python train.py`, a forked model (one YAML + one class), bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from ft_helpers.paths import REPO

from train.checkpoint.store import CheckpointStore

pytestmark = pytest.mark.integration

FORK = REPO / "examples" / "fork_new_model"


def newest(run_dir: Path) -> dict:
    return torch.load(CheckpointStore(run_dir / "checkpoints").checkpoints()[-1].path, weights_only=True)


def test_plain_python_trains_one_process(tmp_path, run_command):
    code, out = run_command([sys.executable, "train.py", "trainer.max_steps=5", f"hydra.run.dir={tmp_path}"])
    assert code == 0, out[-4000:]
    assert newest(tmp_path)["step"] == 5 and newest(tmp_path)["world_size"] == 1
    assert "hang detection is off" in out  # said once, training went on
    assert (tmp_path / ".hydra" / "config.yaml").exists() and (tmp_path / "train_rank0.log").exists()
    assert '"step": 5' in (tmp_path / "metrics.jsonl").read_text()


def test_a_new_model_is_one_yaml_and_one_class(tmp_path, run_command):
    code, out = run_command([sys.executable, "train.py", f"hydra.searchpath=[file://{FORK / 'conf'}]",
                             "model=tiny_transformer", "trainer.max_steps=6", f"hydra.run.dir={tmp_path}"],
                            env_extra={"PYTHONPATH": str(FORK)})
    assert code == 0, out[-4000:]
    state = newest(tmp_path)
    assert state["step"] == 6 and "TinyTransformer" in state["fingerprint"]["model"]
    assert any(k.startswith("encoder.") for k in state["model"])


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, run_command):
    code, out = run_command([sys.executable, "train.py", "fault.kind=bogus", f"hydra.run.dir={tmp_path}"])
    assert code == 2, out[-4000:]
    assert "fault.kind: 'bogus' is not one of" in out and "Traceback" not in out


def test_ft_launcher_with_an_inf_timeout_trains_with_that_timeout_off(tmp_path, run_command):
    launcher = str(Path(sys.executable).parent / "ft_launcher")
    code, out = run_command([launcher, "--standalone", "--nproc-per-node=1", "train.py", "trainer.max_steps=5",
                             "fault_tolerance.rank_heartbeat_timeout=inf", f"hydra.run.dir={tmp_path}"], timeout=90)
    assert code == 0, out[-4000:]
    assert "Traceback" not in out
    assert "per-step none" in out  # the workers and the monitor both read inf as "no timeout"
    assert newest(tmp_path)["step"] == 5
