"""What a checkpoint holds, and how the ranks save it and resume from it together.

Rank 0 writes (DDP keeps weights and optimizer state identical on every rank) after gathering
every rank's RNG state; rank 0 also picks the checkpoint to resume from and broadcasts its
choice, so all ranks load the same one or all raise the same CheckpointError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from train.checkpoint import rng
from train.checkpoint.store import CheckpointFile, CheckpointStore
from train.components import Components
from train.distributed import DistributedContext, barrier, broadcast_from_main, gather_to_main
from train.errors import CheckpointError, CheckpointReadError

log = logging.getLogger(__name__)


class Stateful(Protocol):
    """What a checkpoint part is: anything with ``state_dict()`` and ``load_state_dict()``."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> None: ...


class RankRandomState:
    """Every rank's RNG states as one part: gathered to rank 0 on save, each rank takes its own back.

    Its ``state_dict()`` is a collective, so every rank builds the state, and rank 0 writes it.
    """

    def __init__(self, ctx: DistributedContext) -> None:
        self.ctx = ctx

    def state_dict(self) -> list[dict[str, Any]] | None:
        return gather_to_main(self.ctx, rng.capture(self.ctx.device))

    def load_state_dict(self, states: list[dict[str, Any]]) -> None:
        if self.ctx.rank < len(states):
            rng.restore(states[self.ctx.rank], self.ctx.device)


def checkpoint_parts(ctx: DistributedContext, parts: Components, ft_session: Stateful,
                     settings: Stateful | None = None) -> dict[str, Stateful]:
    """The one mapping a checkpoint is saved from and resumed into; a new part (EMA, a grad scaler) is one entry.

    The keys are the checkpoint's top-level keys (format 1). Order matters on load: the recorded
    ``config`` (:mod:`train.checkpoint.settings`) after the optimizer and scheduler it may adjust, the
    data position before the RNG states, the FT timeouts last.
    """
    stateful: dict[str, Stateful] = {"model": parts.module, "optimizer": parts.optimizer}
    if parts.scheduler is not None:
        stateful["scheduler"] = parts.scheduler
    if settings is not None:
        stateful["config"] = settings
    stateful.update(parts.extra_state)
    stateful.update({"data": parts.train_batches, "rng": RankRandomState(ctx), "ft": ft_session})
    return stateful


def save(ctx: DistributedContext, store: CheckpointStore, stateful: Mapping[str, Stateful], step: int,
         fingerprint: dict[str, str], in_save: Callable[[], None]) -> Path | None:
    """Collective: every rank calls it at the same step; rank 0 writes. Returns the path on rank 0."""
    # Every rank asks every part (collective parts need all ranks); the others return references, no copies.
    state: dict[str, Any] = {name: part.state_dict() for name, part in stateful.items()}
    path = None
    if ctx.is_main:
        started = time.perf_counter()
        state.update(world_size=ctx.world_size, fingerprint=fingerprint)
        path = store.save(step, state, on_written=in_save)
        log.info("checkpoint saved: step %d -> %s (%.1f MB, %.2f s)", step, path.name,
                 path.stat().st_size / 1e6, time.perf_counter() - started)
    else:
        in_save()
    barrier(ctx)  # nobody moves on (or exits) before rank 0's file is durable
    return path


def resume(ctx: DistributedContext, store: CheckpointStore, stateful: Mapping[str, Stateful],
           fingerprint: dict[str, str], allow_fresh_start: bool = False) -> int:
    """Collective: load the newest usable checkpoint into every part on every rank. Returns its step, or 0.

    Every rank raises the same error as rank 0: CheckpointError (exit 2) or CheckpointReadError (retry).
    """
    decision: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    if ctx.is_main:
        store.remove_stale_temporaries()
        try:
            found = store.load_newest(fingerprint, allow_fresh_start)
        except (CheckpointError, CheckpointReadError) as exc:
            decision = {"error": str(exc), "retryable": isinstance(exc, CheckpointReadError)}
        else:
            if found is not None:
                ckpt, state = found
                decision = {"step": ckpt.step, "path": str(ckpt.path), "digest": ckpt.digest}
    decision = broadcast_from_main(ctx, decision)
    if decision is None:
        return 0
    if "error" in decision:
        raise (CheckpointReadError if decision.get("retryable") else CheckpointError)(decision["error"])
    if state is None:
        state = store.load(CheckpointFile(decision["step"], Path(decision["path"]), decision["digest"]))
    _apply(ctx, stateful, state, Path(decision["path"]))
    log.info("resumed from %s: step %d, epoch %d", Path(decision["path"]).name, state["step"],
             state["data"]["epoch"])
    return int(state["step"])


def _apply(ctx: DistributedContext, stateful: Mapping[str, Stateful], state: dict[str, Any], path: Path) -> None:
    saved_world = int(state.get("world_size", ctx.world_size))
    if saved_world != ctx.world_size:
        log.warning("checkpoint was written by %d ranks, this run has %d: training continues, but data "
                    "order and random numbers differ from an uninterrupted run", saved_world, ctx.world_size)
    for name, part in stateful.items():
        if state.get(name) is None:  # e.g. a part added since the checkpoint was written: it starts fresh
            if name not in ("scheduler", "ft", "config"):  # config: TrainingSettings.report says it
                log.warning("checkpoint %s has no '%s': that part starts fresh", path.name, name)
            continue
        try:
            part.load_state_dict(state[name])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint {path} does not fit this {name}: {' '.join(str(exc).split())[:400]}"
            ) from None
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
