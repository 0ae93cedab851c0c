"""trainer.device: ranks that cannot each have a GPU are refused with one line, before any worker starts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0


def test_launcher_refuses_more_cuda_ranks_than_gpus(tmp_path, run_command):
    run_dir = tmp_path / "run"
    nproc = GPUS + 1
    launcher = str(Path(sys.executable).with_name("ft_launcher"))
    code, out = run_command([launcher, "--standalone", f"--nproc-per-node={nproc}", "train.py", "trainer.device=cuda",
                      f"hydra.run.dir={run_dir}"])
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2, out
    assert len(lines) == 1 and lines[0].startswith("ft_launcher: error:"), out
    assert "trainer.device=cpu" in lines[0], out
    assert ("no CUDA GPU is visible" if GPUS == 0 else f"--nproc-per-node={nproc}") in lines[0], out
    assert not run_dir.exists(), "no worker may start"


@pytest.mark.skipif(GPUS > 0, reason="needs a machine without a GPU")
def test_plain_python_with_cuda_and_no_gpu_is_one_line(tmp_path, run_command):
    code, out = run_command([sys.executable, "train.py", "trainer.device=cuda", "trainer.max_steps=2",
                      f"hydra.run.dir={tmp_path}"])
    assert code == 2, out[-4000:]
    assert "trainer.device=cuda but no CUDA GPU is visible" in out and "Traceback" not in out
    assert not (tmp_path / "checkpoints").exists()


def test_auto_trains_on_cpu_without_a_gpu_and_cpu_is_always_cpu(tmp_path, run_command):
    code, out = run_command([sys.executable, "train.py", "trainer.device=cpu", "trainer.max_steps=3",
                      f"hydra.run.dir={tmp_path}"])
    assert code == 0, out[-4000:]
    assert "on cpu" in (tmp_path / "train_rank0.log").read_text()


@pytest.mark.skipif(GPUS > 0, reason="needs a machine without a GPU")
def test_raw_heartbeats_example_with_cuda_and_no_gpu_is_one_line(tmp_path, run_command):
    code, out = run_command([sys.executable, "examples/raw_heartbeats.py", "--device", "cuda",
                      "--checkpoint", str(tmp_path / "c.pt")])
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out
    assert "0 GPU(s) visible" in lines[0] and "--device=cpu" in lines[0], out
    assert not (tmp_path / "c.pt").exists()
