"""Small torch.distributed helpers shared by calibration and PreemptionGuard; torch imported lazily.

``import ft`` must stay light (the launcher imports it), so nothing here imports torch until a
function is called, and a missing or uninitialized process group simply means "one rank".
"""

from __future__ import annotations

import os
import sys
from typing import Any


def process_group_active() -> bool:
    """True when torch.distributed has an initialized default process group."""
    if "torch" not in sys.modules:
        return False  # nobody imported torch, so nobody initialized a process group
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from the process group if there is one, else RANK/WORLD_SIZE (defaults 0/1)."""
    if process_group_active():
        import torch.distributed as dist

        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def collective_device() -> Any:
    """The device collectives need: the current CUDA device for NCCL, CPU for gloo and others."""
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_max(values: list[float]) -> list[float]:
    """Element-wise MAX over all ranks (blocking); the input itself when there is no process group."""
    if not process_group_active():
        return list(values)
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [float(v) for v in tensor.cpu().tolist()]
