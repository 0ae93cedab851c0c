"""Non-finite loss or gradients (``trainer.on_nonfinite``): stop the run with one line, or skip the update.

No host synchronisation is added to a step in ``stop`` mode. The losses of the steps since the last
check are kept as device tensors and read once, when a log line is due (the log reads the loss then
anyway) and before every checkpoint save; the ranks then agree in one small all-gather, so every rank
stops after the same step, and the line names the first non-finite step, its value and the rank. A
gradient norm that is already on the host (``trainer.clip_grad_norm``) is checked at every step.
``skip`` drops the update of a step whose gradient norm is not finite (the norm is the same on every
rank after DDP's all-reduce, so all ranks skip alike); it reads that norm each step, and stops after
``trainer.max_nonfinite_skips`` consecutive skips. Before every save the weights are checked as well,
so a checkpoint never holds non-finite weights and ``keep_last`` never rotates a good one out for one.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.distributed as dist
from omegaconf import DictConfig
from torch import nn

from train.distributed import DistributedContext
from train.errors import NonFiniteError, TrainConfigError

log = logging.getLogger(__name__)
MODES = ("stop", "skip")
_ADVICE = ("restarting cannot help: lower optim.optimizer.lr, set trainer.clip_grad_norm, or "
           "trainer.on_nonfinite=skip; the checkpoints kept are finite, relaunch with the same run dir")


def check_settings(mode: str, max_skips: int) -> None:
    if mode not in MODES:
        raise TrainConfigError(f"trainer.on_nonfinite: expected one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(max_skips, int) or isinstance(max_skips, bool) or max_skips < 0:
        raise TrainConfigError(f"trainer.max_nonfinite_skips: expected a whole number >= 0, got {max_skips!r}")


class NonFiniteGuard:
    """Watches each step's loss and gradient norm; raises :class:`NonFiniteError` on every rank alike."""

    def __init__(self, ctx: DistributedContext, mode: str = "stop", max_skips: int = 0, log_every: int = 1,
                 max_steps: int = 0) -> None:
        check_settings(mode, max_skips)
        self.ctx, self.skip, self.max_skips = ctx, mode == "skip", max_skips
        self.log_every, self.max_steps = max(1, log_every), max_steps
        self._pending: list[tuple[int, torch.Tensor]] = []  # (step, loss on the device) since the last check
        self._skipped = 0  # consecutive skipped updates

    @classmethod
    def from_config(cls, ctx: DistributedContext, cfg: DictConfig) -> NonFiniteGuard:
        t = cfg.trainer
        return cls(ctx, t.on_nonfinite, t.max_nonfinite_skips, t.log_every, t.max_steps)

    def after_step(self, step: int, loss: torch.Tensor, grad_norm: float | None) -> None:
        """Every rank, after every step: a host-side gradient norm now, the losses when a log line is due."""
        if grad_norm is not None and not math.isfinite(grad_norm):
            if not self.skip:
                raise NonFiniteError(f"non-finite gradient norm at step {step}: {grad_norm}; {_ADVICE}")
            self._skipped += 1
            if self._skipped > self.max_skips:
                raise NonFiniteError(f"non-finite gradient norm at step {step}: {grad_norm}, {self._skipped} updates "
                                     f"skipped in a row (trainer.max_nonfinite_skips={self.max_skips}); "
                                     f"{_ADVICE}")
            log.warning("non-finite gradient norm at step %d: %s; its update is skipped (%d in a row, at most %d)",
                        step, grad_norm, self._skipped, self.max_skips)
            return
        self._skipped = 0
        if not self.skip:  # skip mode decides on the gradient norm alone: a skipped step's loss is expected
            self._pending.append((step, loss))
            if step % self.log_every == 0 or step == self.max_steps:
                self.check()

    def check(self) -> None:
        """Collective: read the pending losses; raise on every rank when any rank saw a non-finite one."""
        steps = [s for s, _ in self._pending]
        values = torch.stack([v.detach().float().reshape(()) for _, v in self._pending]) if steps else None
        self._pending = []
        first = (math.inf, 0.0)
        if values is not None:
            bad = (~torch.isfinite(values)).nonzero()
            if bad.numel():
                index = int(bad[0, 0])
                first = (float(steps[index]), float(values[index]))
        found = self._agree(first)
        if found is not None:
            step, value, rank = found
            raise NonFiniteError(f"non-finite loss at step {step}: {value} (rank {rank}); {_ADVICE}")

    def _agree(self, first: tuple[float, float]) -> tuple[int, float, int] | None:
        """The earliest non-finite (step, value, rank) over all ranks, or None (an all-gather when distributed)."""
        mine = torch.tensor(first, dtype=torch.float64, device=self.ctx.device)
        if self.ctx.is_distributed:
            every = [torch.empty_like(mine) for _ in range(self.ctx.world_size)]
            dist.all_gather(every, mine)
        else:
            every = [mine]
        rows = [(float(t[0]), float(t[1]), rank) for rank, t in enumerate(every)]
        step, value, rank = min(rows, key=lambda row: (row[0], row[2]))
        return None if math.isinf(step) else (int(step), value, rank)

    def before_save(self, step: int, module: nn.Module) -> None:
        """Every rank, before every checkpoint save: the pending losses, then the weights themselves."""
        if not self.skip:
            self.check()
        params = [p.detach() for p in module.parameters()]
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            # DDP keeps the weights identical on every rank, so every rank raises here alike.
            raise NonFiniteError(f"non-finite weights at step {step}: its checkpoint is not written; {_ADVICE}")
