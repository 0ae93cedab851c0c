"""Whether a node's ranks fit its GPUs: one rule and one message for the launcher (before any worker) and the loop.

Without the check each surplus rank fails inside NCCL setup ("device may be out of range") on every
restart. The launcher asks first, knowing the rank count and the script's ``trainer.device``; the
loop asks again for scripts started by torchrun or by hand.
"""

from __future__ import annotations

import os

DEVICE_KEY = "trainer.device"
DEVICES = ("auto", "cpu", "cuda")


def visible_gpus() -> int:
    """CUDA GPUs this process can use (0 without CUDA); imports torch."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def wants_cuda(requested: str, gpus: int) -> bool:
    """``trainer.device`` resolved: True for cuda, and for auto where a GPU is visible."""
    return requested == "cuda" or (requested == "auto" and gpus > 0)


def device_fit_problem(requested: str, local_ranks: int, gpus: int) -> str | None:
    """What is wrong with putting ``local_ranks`` ranks on ``requested`` with ``gpus`` visible, or None.

    The message names the key, what was found and what to do; the caller raises its own error type.
    """
    if requested not in DEVICES:
        return f"{DEVICE_KEY}: expected one of {', '.join(DEVICES)}, got {requested!r}"
    if not wants_cuda(requested, gpus):
        return None
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" (CUDA_VISIBLE_DEVICES={shown})" if shown is not None else ""
    if gpus == 0:
        return f"{DEVICE_KEY}=cuda but no CUDA GPU is visible{where}; train on CPU with {DEVICE_KEY}=cpu (or auto)"
    if local_ranks > gpus:
        return (f"{DEVICE_KEY}={requested}: --nproc-per-node={local_ranks} puts {local_ranks} ranks on CUDA but "
                f"{gpus} GPU(s) are visible{where}; use --nproc-per-node={gpus} (or gpu), "
                f"or train on CPU with {DEVICE_KEY}=cpu")
    return None
