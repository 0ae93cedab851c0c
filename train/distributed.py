"""Process-group lifecycle and the few collectives the loop needs, with a one-process fallback.

``python train.py`` runs without a process group; under torchrun or ft_launcher (``WORLD_SIZE``
and ``MASTER_ADDR`` set) the ranks join one: NCCL on ``cuda:LOCAL_RANK`` when ranks train on CUDA
(``trainer.device``: auto picks CUDA when a GPU is visible), gloo on CPU otherwise.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ft import (
    contracts,
    device_fit_problem,
    local_rank_from_env,
    rank_from_env,
    visible_gpus,
    world_size_from_env,
)
from train.errors import TrainConfigError

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


def choose_device(requested: str, local_rank: int, local_world_size: int) -> torch.device:
    """This rank's device for ``trainer.device``: one GPU per local rank, or the CPU.

    Every rank of a node decides alike (from the node's rank count, not its own index), so a node
    with too few GPUs fails on rank 0 too, which is the rank that reports it. The rule and its
    message are the launcher's too (``ft.device_fit_problem``).
    """
    gpus = visible_gpus() if requested != "cpu" else 0
    problem = device_fit_problem(requested, local_world_size, gpus)
    if problem is not None:
        raise TrainConfigError(problem)
    return torch.device("cuda", local_rank) if requested != "cpu" and gpus > 0 else torch.device("cpu")


def setup(timeout_s: float = 1800.0, requested_device: str = "auto") -> DistributedContext:
    """Pick this rank's device, then join the process group if launched as a group."""
    rank, local_rank, world_size = rank_from_env(), local_rank_from_env(), world_size_from_env()
    device = choose_device(requested_device, local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before init_process_group: NCCL binds the current device
        backend = "nccl"
    else:
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
        is_master=os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" and rank_from_env() == 0,
        timeout=timeout,
    )
    attempt = os.environ.get(contracts.ATTEMPT_ID_ENV) or os.environ.get(contracts.RESTART_COUNT_ENV, "0")
    return dist.PrefixStore(f"pulsetrain/attempt_{attempt}", store)


def data_parallel(ctx: DistributedContext, model: nn.Module) -> nn.Module:
    """``model`` wrapped in DDP when the job is distributed (release it with :func:`teardown`)."""
    if not ctx.is_distributed:
        return model
    return DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)


class Releasable(Protocol):
    """What holds the DDP model (``train.components.Components``): ``release()`` drops it."""

    def release(self) -> None: ...


def teardown(ctx: DistributedContext, built: Releasable | None = None) -> None:
    """Drop ``built``'s DDP model, then leave the process group (safe to call twice).

    The model goes first so that its Reducer is never the group's last owner: a Reducer that frees
    the gloo group does so holding the GIL, and the group's teardown can then wait forever for a
    run-loop thread that needs that GIL (docs/launcher.md, "Fork server"). The group then dies with
    Python's last reference, whose destructor releases the GIL.
    """
    if built is not None:
        built.release()
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
