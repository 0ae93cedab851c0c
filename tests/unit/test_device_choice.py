"""Device choice: auto/cpu/cuda, one GPU per local rank, the same verdict on every rank of a node."""

from __future__ import annotations

import pytest
import torch

from launcher.cli.args import UsageError
from launcher.job.devices import check_device_fit
from train.distributed import choose_device
from train.errors import TrainConfigError


@pytest.mark.parametrize(("requested", "nproc", "gpus"), [
    (None, 8, 0), ("cpu", 8, 0), ("cpu", 8, 1), ("auto", 8, 0), ("auto", 2, 2), ("cuda", 1, 1), ("cuda", 2, 8),
])
def test_launcher_accepts_ranks_that_fit(requested, nproc, gpus):
    check_device_fit(requested, nproc, gpus)


@pytest.mark.parametrize(("requested", "nproc", "gpus", "expected"), [
    ("auto", 2, 1, "--nproc-per-node=2 puts 2 ranks on CUDA but 1 GPU(s) are visible"),
    ("cuda", 3, 2, "use --nproc-per-node=2 (or gpu)"),
    ("cuda", 1, 0, "trainer.device=cuda but no CUDA GPU is visible"),
    ("gpu", 1, 1, "trainer.device: expected one of auto, cpu, cuda, got 'gpu'"),
])
def test_launcher_refuses_ranks_that_do_not_fit(requested, nproc, gpus, expected):
    with pytest.raises(UsageError, match="trainer.device") as info:
        check_device_fit(requested, nproc, gpus)
    assert expected in str(info.value)


@pytest.fixture
def fake_gpus(monkeypatch):
    def install(count: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    return install


def test_cpu_is_cpu_even_with_gpus(fake_gpus):
    fake_gpus(4)
    assert choose_device("cpu", 1, 2) == torch.device("cpu")


def test_auto_is_cpu_without_gpus_and_one_gpu_per_local_rank_with_them(fake_gpus):
    fake_gpus(0)
    assert choose_device("auto", 1, 2) == torch.device("cpu")
    fake_gpus(2)
    assert choose_device("auto", 1, 2) == torch.device("cuda", 1)


def test_too_few_gpus_fails_on_every_rank_alike(fake_gpus):
    fake_gpus(1)
    for local_rank in (0, 1):  # rank 0 fails too, so the rank that reports errors says it
        with pytest.raises(TrainConfigError, match=r"--nproc-per-node=2 puts 2 ranks on CUDA but 1 GPU\(s\) are visible"):
            choose_device("auto", local_rank, 2)


def test_cuda_without_gpus_and_unknown_values_are_config_errors(fake_gpus):
    fake_gpus(0)
    with pytest.raises(TrainConfigError, match="trainer.device=cpu"):
        choose_device("cuda", 0, 1)
    with pytest.raises(TrainConfigError, match="expected one of auto, cpu, cuda"):
        choose_device("tpu", 0, 1)
