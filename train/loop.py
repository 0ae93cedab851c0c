"""``run(cfg)``: set up, resume, train with heartbeats, checkpoint, stop together on SIGTERM, shut down."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ft import ExitCode, FaultToleranceConfig, final_metrics, write_json_atomic
from train import distributed, training_state
from train.checkpointing import CheckpointStore
from train.components import Components, build_components
from train.config_checks import check_training_config, run_dir_of
from train.distributed import DistributedContext
from train.faults import FaultPlan, current_attempt
from train.metric_sinks import MetricsSinks, build_sinks
from train.monitoring import FaultToleranceSession
from train.ranked_logging import RankedLogger
from train.reporting import ProgressReport, show_config
from train.sampling import log_samples
from train.step import StepSettings, evaluate, train_step, warm_up_compiled

log = logging.getLogger("train")  # every rank, into its own log file
main_log = RankedLogger("train", rank_zero_only=True)  # said once, by rank 0


@dataclass
class TrainingRun:
    """Everything one attempt of one rank works with, in one place (instead of long argument lists)."""

    cfg: DictConfig
    dist: DistributedContext
    session: FaultToleranceSession
    store: CheckpointStore
    fault: FaultPlan
    run_dir: Path
    attempt: int
    parts: Components | None = None  # built by build_and_resume
    stateful: dict[str, Any] = field(default_factory=dict)  # what a checkpoint saves (training_state)
    fingerprint: dict[str, str] = field(default_factory=dict)
    step: int = 0


def run(cfg: DictConfig) -> int:
    """Train to ``trainer.max_steps``; returns ``ExitCode.FINISHED`` (0) or ``STOPPED_ON_REQUEST`` (75)."""
    ft_config = FaultToleranceConfig.from_mapping(cfg.fault_tolerance)
    fault = FaultPlan.from_config(cfg.get("fault"))
    check_training_config(cfg)
    run_dir = run_dir_of(cfg)
    store = CheckpointStore(run_dir / cfg.checkpoint.dir, cfg.checkpoint.keep_last)

    # Connect to the monitor before anything slow, so the initial timeout covers all of it.
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    session = FaultToleranceSession(ft_config, store.directory, training_state.measured_on(cfg, world_size))
    session.start()
    session.start_section("init")  # ends before the first step: process group, model, data, resume
    session.install_stop_handler()
    ctx = distributed.setup(float(cfg.trainer.get("dist_timeout_s", 1800)), str(cfg.trainer.get("device", "auto")))
    state = TrainingRun(cfg, ctx, session, store, fault, run_dir, current_attempt())
    try:
        build_and_resume(state)
        code = train_to_the_end(state)
    except BaseException:
        # Another rank may be gone: leave the group first, so shutting down runs no collective.
        release_model(state)
        distributed.teardown(ctx)
        session.shutdown()
        raise
    # Leave the group while heartbeat deadlines still cover it; only what follows falls to rank_exit_timeout.
    session.close_stop_handler()
    release_model(state)
    distributed.teardown(ctx)
    session.shutdown()
    return code


def release_model(state: TrainingRun) -> None:
    """Drop the DDP model before the process group goes, so its Reducer is never the group's last owner.

    A Reducer that frees the gloo group does so holding the GIL, and the group's teardown can then
    wait forever for a run-loop thread that needs that GIL (docs/launcher.md, "Fork server").
    """
    state.parts = None
    state.stateful = {}


def build_and_resume(state: TrainingRun) -> None:
    """Say where and how the attempt runs, build the components, load the newest checkpoint into them."""
    cfg, ctx, fault = state.cfg, state.dist, state.fault
    if ctx.is_main:
        state.run_dir.mkdir(parents=True, exist_ok=True)
        if not state.store.checkpoints() and state.attempt == 0:
            show_config(cfg, state.run_dir / "config_tree.log")
    main_log.info("run dir %s | attempt %d | %d rank(s) on %s | hang detection %s", state.run_dir, state.attempt,
                  ctx.world_size, ctx.device.type, state.session.detection_summary())
    if fault.kind != "none" and fault.rank >= ctx.world_size:
        main_log.warning("fault.rank=%d does not exist with %d rank(s): the '%s' fault will not fire",
                         fault.rank, ctx.world_size, fault.kind)
    state.parts = build_components(cfg, ctx)
    state.fingerprint = training_state.fingerprint(cfg)
    state.stateful = training_state.checkpoint_parts(ctx, state.parts, state.session)
    if cfg.trainer.get("compile", False):
        began = time.perf_counter()
        warm_up_compiled(state.parts, ctx.device, StepSettings.from_config(cfg.trainer))
        main_log.info("torch.compile: model compiled in %.1f s (before the first heartbeat)", time.perf_counter() - began)
    if cfg.checkpoint.get("resume", True):
        state.session.heartbeat()
        state.step = training_state.resume(ctx, state.store, state.stateful, state.fingerprint,
                                           bool(cfg.checkpoint.get("allow_fresh_start", False)))
        state.session.heartbeat()


def save_checkpoint(state: TrainingRun, at: int) -> None:
    """A collective save inside the ``checkpoint`` section, heartbeats around it."""
    session, fault, rank = state.session, state.fault, state.dist.rank
    session.heartbeat()
    session.start_section("checkpoint")
    began = time.perf_counter()
    path = training_state.save(state.dist, state.store, state.stateful, at, state.fingerprint,
                               in_save=lambda: fault.in_checkpoint_save(rank, at))
    if path is not None:
        session.persist_state()
    session.end_section("checkpoint")
    session.note_checkpoint_saved(at, time.perf_counter() - began)
    session.heartbeat()


def train_to_the_end(state: TrainingRun) -> int:
    """The step loop from ``state.step`` to ``trainer.max_steps``, or to an agreed stop."""
    cfg, ctx, session, parts = state.cfg, state.dist, state.session, state.parts
    assert parts is not None
    settings = StepSettings.from_config(cfg.trainer)
    max_steps, every = int(cfg.trainer.max_steps), int(cfg.checkpoint.every)
    eval_every, log_every = int(cfg.trainer.eval_every), int(cfg.trainer.log_every)
    device, heartbeat, fault = ctx.device, session.heartbeat, state.fault
    step = state.step
    sinks = build_sinks(cfg.get("logger"), state.run_dir, state.attempt, step) if ctx.is_main else MetricsSinks([])
    report = ProgressReport(max_steps, step, log_every, enabled=ctx.is_main and bool(cfg.trainer.progress))
    last_saved, started, first_step = step, time.perf_counter(), step
    if state.attempt > 0 or step > 0:  # where a restart (or a relaunch) picked up: curves show the lost time
        sinks.log({"event": "attempt_start", "attempt": state.attempt, "resumed_from": step}, step)
    fault_here = fault.kind in _STEP_FAULTS and fault.attempt == state.attempt and fault.rank < ctx.world_size

    if step >= max_steps:
        log.info("already at step %d of %d: nothing to do", step, max_steps)
    parts.model.train()
    start_section, end_section = session.start_section, session.end_section
    end_section("init")
    try:
        while step < max_steps:
            start_section("step")
            if fault_here and step + 1 == fault.step:
                sinks.log({"event": "fault_injected", "kind": fault.kind, "rank": fault.rank}, step + 1)
            fault.before_step(ctx.rank, step + 1)
            loss, grad_norm = train_step(parts, device, settings)
            step += 1
            end_section("step")
            heartbeat()

            due = ctx.is_main and report.due(step)  # only then is the loss synchronised to the host
            loss_value = loss.item() if due else None
            report.step(step, loss_value)
            if due:
                values = {"loss": round(loss_value, 6), "steps_per_s": round(report.steps_per_s, 2)}
                if grad_norm is not None:
                    values["grad_norm"] = round(grad_norm, 6)
                sinks.log({**values, "lr": parts.optimizer.param_groups[0]["lr"]}, step)
            if eval_every and step % eval_every == 0:
                _evaluate(state, step, settings, sinks)
            if step % every == 0 or step == max_steps:
                save_checkpoint(state, step)
                sinks.log({"event": "checkpoint"}, step)
                last_saved = step
            session.maybe_calibrate(step)
            if step < max_steps and session.should_stop(step):
                if last_saved != step:
                    save_checkpoint(state, step)
                    sinks.log({"event": "checkpoint"}, step)
                sinks.log({"event": "stopped_on_request"}, step)
                log.log(logging.WARNING if ctx.is_main else logging.INFO,
                        "stopped on request after step %d (checkpoint saved); relaunch with the same "
                        "run dir to continue: hydra.run.dir=%s", step, state.run_dir)
                return ExitCode.STOPPED_ON_REQUEST
    finally:
        parts.train_batches.close()  # loader worker processes end with the loop, whatever ended it
        report.close()
        sinks.close()
    elapsed = time.perf_counter() - started
    if step > first_step:
        main_log.info("done: step %d/%d, %.1f steps/s over this attempt's %d steps; final checkpoint in %s",
                      step, max_steps, (step - first_step) / elapsed, step - first_step, state.store.directory)
    if ctx.is_main:
        _finish(state, step, sinks.last)
    return ExitCode.FINISHED


# Faults that fire as a step begins (the loop logs them as events on rank 0 before they fire).
_STEP_FAULTS = ("hang", "kill", "exception", "sigterm")


def _finish(state: TrainingRun, step: int, last: dict[str, Any]) -> None:
    """Rank 0 of a finished run: ``final_metrics.json`` (last value of each metric), then text samples."""
    if last:  # a relaunch of a finished run trains nothing and keeps the file it wrote
        write_json_atomic(state.run_dir / final_metrics.FILE_NAME, {"step": step, **last})
    if state.cfg.get("sample") and state.parts is not None:
        log_samples(state.parts.module, state.cfg.sample, state.dist.device)


def _evaluate(state: TrainingRun, step: int, settings: StepSettings, sinks: MetricsSinks) -> None:
    """Validation inside the ``validation`` section; rank 0 logs val_loss (and val_ppl for a language model)."""
    session = state.session
    session.start_section("validation")
    val_loss = evaluate(state.parts, state.dist.device, settings, session.heartbeat)
    session.end_section("validation")
    if val_loss is None:
        return
    session.note_validated()
    values = {"val_loss": round(val_loss, 6)}
    if state.cfg.data.get("perplexity", False):
        values["val_ppl"] = round(math.exp(min(val_loss, 50.0)), 4)
    main_log.info("step %d  %s", step, "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    sinks.log(values, step)
