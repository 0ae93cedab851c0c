"""``run(cfg)``: build, resume, the train step, evaluation and the loop; fault tolerance as a few named calls.

Read top to bottom. :func:`forward_loss` is the one place where model, batch and objective meet
(training, compile warm-up and validation alike). Fault tolerance is ``with session.step():``,
``session.section(...)``, ``session.after_step(...)``, :func:`save` and one ``session.close(...)``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from ft import ExitCode, FaultToleranceConfig, MetricEvent, Section, world_size_from_env
from train import distributed
from train.checkpoint.checkpointer import Checkpointer
from train.checkpoint.fingerprint import measured_on
from train.checkpoint.store import CheckpointStore
from train.components import Components, build_components
from train.config.checks import PRECISIONS, StepSettings, check_training_config, run_dir_of
from train.data import to_device
from train.fault_tolerance import FaultToleranceSession
from train.faults import FaultPlan, current_attempt
from train.metrics.console import show_start
from train.metrics.means import MetricMeans
from train.metrics.ranked_logging import RankedLogger
from train.metrics.training_log import TrainingLog
from train.nonfinite import NonFiniteGuard
from train.objective import with_derived
from train.stragglers import StragglerWatch
from train.training_run import TrainingRun

log = logging.getLogger("train")  # every rank, into its own log file
main_log = RankedLogger("train", rank_zero_only=True)  # said once, by rank 0


def forward_loss(objective: Any, model: nn.Module, batch: Any, device: torch.device,
                 settings: StepSettings) -> tuple[torch.Tensor, dict[str, Any]]:
    """``objective(model, batch)`` on the device, under bf16 autocast when ``trainer.precision`` asks for it."""
    dtype = PRECISIONS[settings.precision]
    with torch.autocast(device.type, getattr(torch, dtype)) if dtype else contextlib.nullcontext():
        return objective(model, to_device(batch, device))


def train_step(parts: Components, device: torch.device, settings: StepSettings, means: MetricMeans | None = None,
               before_sync: Any = None) -> tuple[torch.Tensor, float | None]:
    """One optimizer step over ``grad_accum`` micro-batches; returns (mean loss, grad norm before clipping).

    Non-final micro-batches run under DDP's ``no_sync()``: gradients are all-reduced once per step, in the
    last backward; ``before_sync()`` is called just before it (the straggler watch's mark).
    The objective's metrics go into ``means``; only the gradient norm is read to the host, when clipping or
    ``on_nonfinite=skip`` asks for it (``skip``: a non-finite norm means no update)."""
    parts.optimizer.zero_grad(set_to_none=True)
    no_sync = getattr(parts.model, "no_sync", None)
    total = torch.zeros((), device=device)
    for micro in range(settings.grad_accum):
        batch = next(parts.train_batches)
        last = micro == settings.grad_accum - 1
        with (contextlib.nullcontext() if last or no_sync is None else no_sync()):
            loss, metrics = forward_loss(parts.objective, parts.model, batch, device, settings)
            if last and before_sync is not None:
                before_sync()
            (loss / settings.grad_accum).backward()
        total += loss.detach().float()
        if means is not None:
            means.add(metrics, 1 / settings.grad_accum)
    grad_norm = None
    if settings.clip_grad_norm is not None or settings.skip_nonfinite:
        limit = settings.clip_grad_norm if settings.clip_grad_norm is not None else math.inf  # inf: scales by 1
        grad_norm = float(torch.nn.utils.clip_grad_norm_(parts.module.parameters(), limit))
    if not (settings.skip_nonfinite and not math.isfinite(grad_norm)):
        parts.optimizer.step()
    if parts.scheduler is not None:  # a skipped update still takes its step of the schedule
        parts.scheduler.step()
    return total / settings.grad_accum, grad_norm


def warm_up_compiled(parts: Components, device: torch.device, settings: StepSettings) -> None:
    """Forward and backward once on the next batch (``torch.compile`` compiles under the initial timeout); nothing survives."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        loss, _ = forward_loss(parts.objective, parts.model, parts.train_batches.peek(), device, settings)
        loss.backward()
    parts.optimizer.zero_grad(set_to_none=True)


class Validator:
    """Validation every ``trainer.eval_every`` steps (0: never) on the fixed evaluation batches, the same on
    every rank (no collective), inside the ``validation`` section with a heartbeat per batch."""

    def __init__(self, parts: Components, device: torch.device, settings: StepSettings,
                 session: FaultToleranceSession, every: int) -> None:
        self.parts, self.device, self.settings, self.session, self.every = parts, device, settings, session, every

    def due(self, step: int) -> bool:
        return bool(self.every) and bool(self.parts.eval_batches) and step % self.every == 0

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Means of the loss and the objective's metrics over the batches, named ``val_*``."""
        parts, means = self.parts, MetricMeans()
        parts.module.eval()
        try:
            with self.session.section(Section.VALIDATION):
                for batch in parts.eval_batches:
                    loss, metrics = forward_loss(parts.objective, parts.module, batch, self.device, self.settings)
                    means.add({"loss": loss.float().item(), **metrics})
                    means.count()
                    self.session.heartbeat()
        finally:
            parts.module.train()
        self.session.note_validated()
        return with_derived(parts.objective, means.take(), prefix="val_")  # e.g. val_ppl = exp(val_loss)


def run(cfg: DictConfig) -> int:
    """Train to ``trainer.max_steps``: ``FINISHED`` (0), ``STOPPED_ON_REQUEST`` (75); raises NonFiniteError, StragglerError."""
    ft_config = FaultToleranceConfig.from_mapping(cfg.fault_tolerance)
    fault = FaultPlan.from_config(cfg.get("fault"))
    check_training_config(cfg)
    run_dir = run_dir_of(cfg)
    store = CheckpointStore(run_dir / cfg.checkpoint.dir, cfg.checkpoint.keep_last)
    # Connect to the monitor before anything slow, so the initial timeout covers all of it.
    session = FaultToleranceSession(ft_config, store.directory, measured_on(cfg, world_size_from_env()))
    session.start()
    session.start_section(Section.INIT.value)  # until the first step: process group, model, data, resume
    session.install_stop_handler()
    ctx = distributed.setup(cfg.trainer.dist_timeout_s, cfg.trainer.device)
    state = TrainingRun(cfg, ctx, session, store, fault, run_dir, current_attempt(), NonFiniteGuard.from_config(ctx, cfg))
    finished = False
    try:
        build_and_resume(state)
        code = train_to_the_end(state)
        finished = True
    finally:
        session.close(ctx, state.parts, finished)
    return code


def build_and_resume(state: TrainingRun) -> None:
    """Say where and how the attempt runs, build the components, load the newest checkpoint into them."""
    cfg, ctx = state.cfg, state.dist
    show_start(cfg, state.run_dir, state.attempt, ctx, fresh=not state.store.checkpoints(),
               hang_detection=state.session.detection_summary())
    state.fault.warn_if_absent(ctx.world_size)
    state.parts = build_components(cfg, ctx)
    state.checkpointer = Checkpointer(cfg, state.store, ctx, state.session, state.fault, state.parts)
    if cfg.trainer.compile:
        began = time.perf_counter()
        warm_up_compiled(state.parts, ctx.device, StepSettings.from_config(cfg.trainer))
        main_log.info("torch.compile: model compiled in %.1f s (before the first heartbeat)", time.perf_counter() - began)
    state.step = state.checkpointer.resume()


def save(state: TrainingRun, training_log: TrainingLog, step: int) -> None:
    """A collective checkpoint save (``checkpoint`` section), then its event; nothing non-finite is ever saved."""
    state.guard.before_save(step, state.parts.module)
    state.checkpointer.save(step)
    training_log.event(MetricEvent.CHECKPOINT, step)


def train_to_the_end(state: TrainingRun) -> int:
    """The step loop from ``state.step`` to ``trainer.max_steps``, or to an agreed stop."""
    cfg, ctx, session, parts, checkpointer = state.cfg, state.dist, state.session, state.parts, state.checkpointer
    settings, max_steps = StepSettings.from_config(cfg.trainer), cfg.trainer.max_steps
    device, fault, step = ctx.device, state.fault, state.step
    training_log = TrainingLog(cfg, state.run_dir, state.attempt, step, ctx.is_main, fault, ctx.world_size,
                               parts.objective)
    validator = Validator(parts, device, settings, session, cfg.trainer.eval_every)
    stragglers = StragglerWatch.from_config(cfg, ctx, training_log)  # named in the log and the metrics
    parts.model.train()
    session.end_section(Section.INIT.value)
    try:
        while step < max_steps:
            with session.step():  # the `step` section, a heartbeat when it ends
                stragglers.begin()
                training_log.before_step(step + 1)
                fault.before_step(ctx.rank, step + 1)
                loss, grad_norm = train_step(parts, device, settings, training_log.means, stragglers.compute_done)
                step += 1
            stragglers.after_step(step)  # every straggler_window_steps: an all-gather of one float per rank
            training_log.after_step(step, loss, grad_norm, parts.optimizer.param_groups[0]["lr"])
            state.guard.after_step(step, loss, grad_norm)  # NaN/inf: NonFiniteError on every rank (exit 93)
            if validator.due(step):
                training_log.validation(step, validator.evaluate())
            if checkpointer.due(step):
                save(state, training_log, step)
            if session.after_step(step, max_steps):  # calibration when due; True: the ranks agreed to stop
                if checkpointer.last_saved != step:
                    save(state, training_log, step)
                training_log.stopped_on_request(step)
                return ExitCode.STOPPED_ON_REQUEST
    finally:
        parts.train_batches.close()  # loader worker processes end with the loop, whatever ended it
        training_log.close()
    training_log.finish(step, state.store.directory)
    if ctx.is_main:
        on_train_end = getattr(parts.objective, "on_train_end", None)  # e.g. the language model's samples
        if on_train_end is not None:
            on_train_end(parts.module, device)
    return ExitCode.FINISHED
