"""Learning-rate schedules the loop can checkpoint: linear warmup then cosine decay (``optim=adamw_warmup_cosine``)."""

from __future__ import annotations

import math

import torch

from train.errors import TrainConfigError


class WarmupCosine:
    """The factor on the base learning rate at a step: 0→1 over ``warmup_steps``, then cosine to ``min_ratio``.

    A class, not a lambda: ``LambdaLR.state_dict()`` saves a callable object's attributes, so the
    schedule's shape travels with the checkpoint.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float = 0.1) -> None:
        self.warmup_steps, self.total_steps, self.min_ratio = warmup_steps, total_steps, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                  min_ratio: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` with :class:`WarmupCosine`; stepped once per optimizer step."""
    for key, value, low in (("warmup_steps", warmup_steps, 0), ("total_steps", total_steps, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise TrainConfigError(f"optim.scheduler.{key}: expected a whole number >= {low}, got {value!r}")
    if not 0 <= min_ratio <= 1:
        raise TrainConfigError(f"optim.scheduler.min_ratio: expected a number in [0, 1], got {min_ratio!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, min_ratio))
