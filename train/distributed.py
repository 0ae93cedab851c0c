"""Process-group lifecycle and the few collectives the loop needs, with a one-process fallback.

``python train.py`` runs without a process group; under torchrun or ft_launcher (``WORLD_SIZE``
and ``MASTER_ADDR`` set) the ranks join one: NCCL on ``cuda:LOCAL_RANK`` when CUDA is available,
gloo on CPU otherwise.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    is_distributed: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_distributed() -> bool:
    """True when a launcher (torchrun, ft_launcher) started this process as one of a group."""
    return "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ


def setup(timeout_s: float = 1800.0) -> DistributedContext:
    """Join the process group if launched as a group; pick the device."""
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    distributed = launched_distributed()
    if distributed and not dist.is_initialized():
        timeout = datetime.timedelta(seconds=timeout_s)
        dist.init_process_group(
            backend=backend, store=_attempt_store(world_size, timeout), rank=rank, world_size=world_size,
            timeout=timeout, device_id=device if device.type == "cuda" else None,
        )
        log.debug("joined process group: backend=%s rank=%d/%d", backend, rank, world_size)
    return DistributedContext(rank, local_rank, world_size, device, distributed)


def _attempt_store(world_size: int, timeout: datetime.timedelta) -> dist.Store:
    """The launcher's key-value store, under a prefix of its own for this attempt.

    torch.distributed.elastic shares one TCPStore across restarts; without a prefix, a restarted
    rank reads the addresses its peers published in the failed attempt and gloo's connect fails.
    The prefix is the attempt id ft_launcher agreed on across nodes (PULSETRAIN_ATTEMPT_ID); under
    plain torchrun, the restart count (which nodes may disagree on after another node's failure).
    """
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size,
        is_master=os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" and os.environ.get("RANK") == "0",
        timeout=timeout,
    )
    attempt = os.environ.get("PULSETRAIN_ATTEMPT_ID") or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"pulsetrain/attempt_{attempt}", store)


def teardown(ctx: DistributedContext) -> None:
    """Leave the process group (safe to call twice)."""
    if ctx.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_from_main(ctx: DistributedContext, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (picklable objects; small)."""
    if not ctx.is_distributed:
        return value
    box = [value if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_main(ctx: DistributedContext, value: Any) -> list[Any] | None:
    """Every rank's ``value`` as a list on rank 0 (``None`` elsewhere)."""
    if not ctx.is_distributed:
        return [value]
    out: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(value, out, dst=0)
    return out


def barrier(ctx: DistributedContext) -> None:
    """Wait for every rank (no-op in one process)."""
    if ctx.is_distributed:
        dist.barrier()
