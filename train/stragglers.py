"""Stragglers named: each rank times the part of its step before it can wait for the others; slow ranks are named.

What is timed: from the step's start (before the data fetch and any injected fault) to just before the
backward of its last micro-batch, i.e. data + forward + loss (and the ``no_sync`` micro-batches' backwards).
Up to there a rank waits for nobody: DDP's gradient all-reduce starts inside that backward. The clock is
the rank's own thread CPU time (``time.thread_time()``), not the wall clock: time the OS gives to other
processes on a shared machine does not make a rank a straggler (docs/training.md has the numbers). Two clock
reads and a list append per step, no device synchronisation (on CUDA it is the host's view). Every ``trainer.straggler_window_steps`` steps of the
attempt the ranks all-gather one float each, their window's median, and :mod:`train.straggler_stats`
decides, the same on every rank: a named rank is logged by rank 0 with its numbers, written as a
``straggler`` event to the metrics sinks, and with ``trainer.on_straggler=stop`` every rank raises
:class:`StragglerError` after the same step (train.py exits 69, ``ExitCode.NODE_UNHEALTHY``).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig

from ft import MetricEvent
from train.distributed import DistributedContext
from train.errors import StragglerError
from train.metrics.ranked_logging import RankedLogger
from train.straggler_stats import StragglerJudge, check_settings, window_median

main_log = RankedLogger("train", rank_zero_only=True)


def _noop(*_: Any) -> None:
    pass


class StragglerWatch:
    """One rank's step timings and the window check; every method is a no-op when off (one rank, or window 0)."""

    def __init__(self, ctx: DistributedContext, events: Any, window_steps: int = 20, factor: float = 1.3,
                 windows: int = 3, action: str = "log") -> None:
        check_settings(window_steps, factor, windows, action)
        self.ctx, self.events, self.window_steps, self.stop = ctx, events, window_steps, action == "stop"
        self.judge = StragglerJudge(factor, windows)
        self.samples: list[float] = []
        self._began = 0.0
        self.checked_s = 0.0  # time spent in the window checks (gather + decision), for benchmarks/stragglers.py
        if window_steps == 0 or ctx.world_size < 2:
            self.begin = self.compute_done = self.after_step = _noop  # type: ignore[method-assign]

    @classmethod
    def from_config(cls, cfg: DictConfig, ctx: DistributedContext, events: Any) -> StragglerWatch:
        t = cfg.trainer
        return cls(ctx, events, t.straggler_window_steps, t.straggler_factor, t.straggler_windows, t.on_straggler)

    def begin(self) -> None:
        """As the step starts, before its data is fetched."""
        self._began = time.thread_time()

    def compute_done(self) -> None:
        """Just before the last micro-batch's backward, where waiting for the other ranks may begin."""
        self.samples.append(time.thread_time() - self._began)

    def after_step(self, step: int) -> None:
        """Every rank after every step: a collective check once a window is full."""
        if len(self.samples) >= self.window_steps:
            began = time.perf_counter()
            medians = self._gather(window_median(self.samples))
            self.samples = []
            named = self.judge.judge(medians)
            self.checked_s += time.perf_counter() - began
            for found in named:
                self._name(step, found)
            if named and self.stop:
                ranks = ", ".join(str(f.rank) for f in named)
                raise StragglerError(f"straggler: rank(s) {ranks} stopped the run at step {step} "
                                     "(trainer.on_straggler=stop); requeue the job on other nodes")

    def _gather(self, median: float) -> list[float]:
        mine = torch.tensor([median], dtype=torch.float64, device=self.ctx.device)
        every = [torch.empty_like(mine) for _ in range(self.ctx.world_size)]
        dist.all_gather(every, mine)
        return [float(t[0]) for t in every]

    def _name(self, step: int, found: Any) -> None:
        main_log.warning("straggler: rank %d is %.2fx slower than the others before its gradient all-reduce at step "
                         "%d (median %.2f ms vs %.2f ms of thread CPU time per step in the last window of %d steps; "
                         "above %gx in %d windows in a row)", found.rank, found.ratio, step, found.median_s * 1e3,
                         found.others_median_s * 1e3, self.window_steps, self.judge.factor, found.windows)
        self.events.event(MetricEvent.STRAGGLER, step, rank=found.rank, ratio=round(found.ratio, 3),
                          median_ms=round(found.median_s * 1e3, 3),
                          others_median_ms=round(found.others_median_s * 1e3, 3), windows=found.windows)
