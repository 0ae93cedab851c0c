"""Refuse, before any worker starts, a job that would put more local ranks on CUDA than there are GPUs.

Without this, each surplus rank fails inside NCCL setup ("device may be out of range") on every
restart; the launcher knows the rank count and the script's ``trainer.device`` up front.
"""

from __future__ import annotations

import os

from launcher.cli.args import UsageError

DEVICE_KEY = "trainer.device"


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_device_fit(requested: str | None, nproc: int, gpus: int) -> None:
    """Raise UsageError when ``nproc`` ranks on ``requested`` (auto, cpu, cuda) cannot each have a GPU."""
    if requested is None or requested == "cpu" or (requested == "auto" and gpus == 0):
        return  # not the template (no such key), or CPU ranks
    if requested not in ("auto", "cuda"):
        raise UsageError(f"{DEVICE_KEY}: expected one of auto, cpu, cuda, got {requested!r}")
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" (CUDA_VISIBLE_DEVICES={shown})" if shown is not None else ""
    if gpus == 0:
        raise UsageError(f"{DEVICE_KEY}=cuda but no CUDA GPU is visible{where}; "
                         f"train on CPU with {DEVICE_KEY}=cpu")
    if nproc > gpus:
        raise UsageError(f"--nproc-per-node={nproc} puts {nproc} ranks on CUDA but {gpus} GPU(s) are visible{where}; "
                         f"use --nproc-per-node={gpus} (or gpu), or train on CPU with {DEVICE_KEY}=cpu")


def check_devices(devices: list[str | None], nproc: int) -> None:
    """Every job's ranks fit this node's GPUs (asks CUDA only when some job wants it)."""
    wanted = set(devices) - {None, "cpu"}
    gpus = visible_gpus() if wanted else 0
    for device in sorted(wanted):
        check_device_fit(device, nproc, gpus)
