"""One optimizer step as the trainer config asks for it: gradient accumulation, clipping, bf16 autocast.

Validated once (``StepSettings.from_config``), so a bad value is one error naming its key.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig

from train.components import Components
from train.errors import TrainConfigError

PRECISIONS = {"32": None, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class StepSettings:
    """``trainer.grad_accum``, ``trainer.clip_grad_norm`` and ``trainer.precision``."""

    grad_accum: int = 1
    clip_grad_norm: float | None = None
    precision: str = "32"

    @classmethod
    def from_config(cls, trainer: DictConfig) -> StepSettings:
        accum = trainer.get("grad_accum", 1)
        if not isinstance(accum, int) or isinstance(accum, bool) or accum < 1:
            raise TrainConfigError(f"trainer.grad_accum: expected a whole number >= 1, got {accum!r}")
        clip = trainer.get("clip_grad_norm", None)
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float))
                                 or not math.isfinite(clip) or clip <= 0):
            raise TrainConfigError(f"trainer.clip_grad_norm: expected a number > 0 or null, got {clip!r}")
        precision = str(trainer.get("precision", "32"))
        if precision not in PRECISIONS:
            raise TrainConfigError(f"trainer.precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        return cls(accum, None if clip is None else float(clip), precision)


def autocast(settings: StepSettings, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast (CPU and CUDA) when asked for, else nothing."""
    dtype = PRECISIONS[settings.precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def train_step(parts: Components, device: torch.device, settings: StepSettings) -> tuple[torch.Tensor, float | None]:
    """One optimizer step over ``grad_accum`` micro-batches; returns (mean loss, grad norm before clipping).

    Non-final micro-batches run under DDP's ``no_sync()``: gradients are all-reduced once per step.
    Nothing is synchronised to the host except the gradient norm when clipping is on.
    """
    parts.optimizer.zero_grad(set_to_none=True)
    no_sync = getattr(parts.model, "no_sync", None)
    total = torch.zeros((), device=device)
    for micro in range(settings.grad_accum):
        inputs, targets = next(parts.train_batches)
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        last = micro == settings.grad_accum - 1
        with (contextlib.nullcontext() if last or no_sync is None else no_sync()):
            with autocast(settings, device):
                loss = parts.criterion(parts.model(inputs), targets)
            (loss / settings.grad_accum).backward()
        total += loss.detach().float()
    grad_norm = None
    if settings.clip_grad_norm is not None:
        grad_norm = float(torch.nn.utils.clip_grad_norm_(parts.module.parameters(), settings.clip_grad_norm))
    parts.optimizer.step()
    if parts.scheduler is not None:
        parts.scheduler.step()
    return total / settings.grad_accum, grad_norm


def warm_up_compiled(parts: Components, device: torch.device, settings: StepSettings) -> None:
    """Forward and backward once on the next batch, so ``torch.compile`` compiles before the first step.

    Called during start-up, before the first heartbeat: the compile (a minute and more on a busy
    CPU) falls under ``initial_rank_heartbeat_timeout``, not the per-step timeout. Nothing it does
    survives: random state is restored, gradients are dropped and the optimizer does not step.
    """
    inputs, targets = parts.train_batches.peek()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        with autocast(settings, device):
            loss = parts.criterion(parts.model(inputs.to(device)), targets.to(device))
        loss.backward()
    parts.optimizer.zero_grad(set_to_none=True)


@torch.no_grad()
def evaluate(parts: Components, device: torch.device, settings: StepSettings, heartbeat: Any) -> float | None:
    """Mean loss over the fixed evaluation batches (same on every rank: no collective), a heartbeat per batch."""
    if not parts.eval_batches:
        return None
    parts.module.eval()
    total = 0.0
    try:
        for inputs, targets in parts.eval_batches:
            with autocast(settings, device):
                total += parts.criterion(parts.module(inputs.to(device)), targets.to(device)).float().item()
            heartbeat()
    finally:
        parts.module.train()
    return total / len(parts.eval_batches)
