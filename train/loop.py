"""``run(cfg)``: set up, resume, train with heartbeats, checkpoint, stop together on SIGTERM, shut down."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from ft import FaultToleranceConfig, final_metrics
from ft.exit_codes import FINISHED, STOPPED_ON_REQUEST
from train import distributed, training_state
from train.checkpointing import CheckpointStore, write_json_atomic
from train.components import Components, build_components
from train.distributed import DistributedContext
from train.errors import TrainConfigError
from train.faults import FaultPlan, current_attempt
from train.monitoring import FaultToleranceSession
from train.reporting import MetricsWriter, ProgressReport, show_config

log = logging.getLogger("train")


def run_dir_of(cfg: DictConfig) -> Path:
    """The run directory: ``cfg.run_dir`` (``${hydra:runtime.output_dir}`` under @hydra.main)."""
    try:
        return Path(str(cfg.run_dir)).absolute()
    except Exception as exc:  # compose() without a run_dir override cannot resolve ${hydra:...}
        raise TrainConfigError(f"run_dir: cannot be resolved ({exc}); pass run_dir=<dir>") from None


def _positive(cfg: DictConfig, key: str, allow_zero: bool = False) -> int:
    section, name = key.split(".")
    value = cfg[section].get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        raise TrainConfigError(f"{key}: expected a whole number >= {0 if allow_zero else 1}, got {value!r}")
    return value


def run(cfg: DictConfig) -> int:
    """Train to ``trainer.max_steps``; returns FINISHED (0) or STOPPED_ON_REQUEST (75)."""
    ft_config = FaultToleranceConfig.from_mapping(cfg.fault_tolerance)
    fault = FaultPlan.from_config(cfg.get("fault"))
    for key in ("trainer.max_steps", "trainer.log_every", "checkpoint.every", "checkpoint.keep_last"):
        _positive(cfg, key)
    _positive(cfg, "trainer.val_every", allow_zero=True)
    run_dir = run_dir_of(cfg)
    store = CheckpointStore(run_dir / cfg.checkpoint.dir, cfg.checkpoint.keep_last)

    # Connect to the monitor before anything slow, so the initial timeout covers all of it.
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    session = FaultToleranceSession(ft_config, store.directory, training_state.measured_on(cfg, world_size))
    session.start()
    session.start_section("init")  # ends before the first step: process group, model, data, resume
    session.install_stop_handler()
    ctx = distributed.setup(float(cfg.trainer.get("dist_timeout_s", 1800)), str(cfg.trainer.get("device", "auto")))
    try:
        code = _train(cfg, ctx, session, store, fault, run_dir)
    except BaseException:
        # Another rank may be gone: leave the group first, so shutting down runs no collective.
        distributed.teardown(ctx)
        session.shutdown()
        raise
    # Leave the group while heartbeat deadlines still cover it; only what follows falls to rank_exit_timeout.
    session.close_stop_handler()
    distributed.teardown(ctx)
    session.shutdown()
    return code


def _train(cfg: DictConfig, ctx: DistributedContext, session: FaultToleranceSession,
           store: CheckpointStore, fault: FaultPlan, run_dir: Path) -> int:
    attempt = current_attempt()
    fresh = not store.checkpoints()
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if fresh and attempt == 0:
            show_config(cfg, run_dir / "config_tree.log")
        log.info("run dir %s | attempt %d | %d rank(s) on %s | hang detection %s", run_dir, attempt,
                 ctx.world_size, ctx.device.type, _detection_summary(session))
        if fault.kind != "none" and fault.rank >= ctx.world_size:
            log.warning("fault.rank=%d does not exist with %d rank(s): the '%s' fault will not fire",
                        fault.rank, ctx.world_size, fault.kind)
    parts = build_components(cfg, ctx)
    fp = training_state.fingerprint(cfg)
    step = 0
    if cfg.checkpoint.get("resume", True):
        session.heartbeat()
        step, ft_state = training_state.resume(ctx, store, parts, fp,
                                               bool(cfg.checkpoint.get("allow_fresh_start", False)))
        session.load_state_dict(ft_state)
        session.heartbeat()
    return _loop(cfg, ctx, session, store, fault, parts, fp, step, run_dir, attempt)


def _detection_summary(session: FaultToleranceSession) -> str:
    client = session.client
    if client is None:
        return "off (fault_tolerance.enabled=false)"
    if not client.is_monitored:
        return "off (not started by ft_launcher)"
    t = client.hb_timeouts
    if t.initial is None and t.subsequent is None:
        return "off until timeouts are calculated" if session.config.calibrate else "off (timeouts are null)"
    fmt = lambda v: "none" if v is None else f"{v:g} s"  # noqa: E731
    source = "calculated" if t.were_calculated else "config"
    return f"on (initial {fmt(t.initial)}, per-step {fmt(t.subsequent)}, {source})"


def _loop(cfg: DictConfig, ctx: DistributedContext, session: FaultToleranceSession, store: CheckpointStore,
          fault: FaultPlan, parts: Components, fp: dict[str, str], step: int, run_dir: Path,
          attempt: int) -> int:
    max_steps, every = int(cfg.trainer.max_steps), int(cfg.checkpoint.every)
    val_every, log_every = int(cfg.trainer.val_every), int(cfg.trainer.log_every)
    device, heartbeat = ctx.device, session.heartbeat
    metrics = MetricsWriter(run_dir / "metrics.jsonl", attempt) if ctx.is_main else None
    report = ProgressReport(max_steps, step, log_every, enabled=ctx.is_main and bool(cfg.trainer.progress))
    last_saved, started, first_step = step, time.perf_counter(), step

    def save(at: int) -> None:
        session.heartbeat()
        session.start_section("checkpoint")
        began = time.perf_counter()
        path = training_state.save(ctx, store, parts, at, fp, session.state_dict(),
                                   in_save=lambda: fault.in_checkpoint_save(ctx.rank, at))
        if path is not None:
            session.persist_state()
        session.end_section("checkpoint")
        session.note_checkpoint_saved(at, time.perf_counter() - began)
        session.heartbeat()

    if step >= max_steps:
        log.info("already at step %d of %d: nothing to do", step, max_steps)
    parts.model.train()
    start_section, end_section = session.start_section, session.end_section
    end_section("init")
    try:
        while step < max_steps:
            start_section("step")
            fault.before_step(ctx.rank, step + 1)
            loss = train_step(parts, device)
            step += 1
            end_section("step")
            heartbeat()

            due = ctx.is_main and report.due(step)  # only then is the loss synchronised to the host
            loss_value = loss.item() if due else None
            report.step(step, loss_value)
            if due and metrics is not None:
                metrics.write(step, loss=round(loss_value, 6), steps_per_s=round(report.steps_per_s, 2))
            if val_every and step % val_every == 0:
                _validate(ctx, parts, session, step, metrics)
            if step % every == 0 or step == max_steps:
                save(step)
                last_saved = step
            session.maybe_calibrate(step)
            if step < max_steps and session.should_stop(step):
                if last_saved != step:
                    save(step)
                log.log(logging.WARNING if ctx.is_main else logging.INFO,
                        "stopped on request after step %d (checkpoint saved); relaunch with the same "
                        "run dir to continue: hydra.run.dir=%s", step, run_dir)
                return STOPPED_ON_REQUEST
    finally:
        parts.train_batches.close()  # loader worker processes end with the loop, whatever ended it
        report.close()
        if metrics is not None:
            metrics.close()
    if ctx.is_main:  # the last logged value of each metric, for sweepers (ft/final_metrics.py)
        path, last = run_dir / "metrics.jsonl", {}
        for line in path.read_text().splitlines() if path.exists() else []:
            last.update(json.loads(line) if line.endswith("}") else {})
        values = {k: v for k, v in last.items() if k not in ("time", "attempt")}
        write_json_atomic(run_dir / final_metrics.FILE_NAME, {**values, "step": step})
    elapsed = time.perf_counter() - started
    if ctx.is_main and step > first_step:
        log.info("done: step %d/%d, %.1f steps/s over this attempt's %d steps; final checkpoint in %s",
                 step, max_steps, (step - first_step) / elapsed, step - first_step, store.directory)
    return FINISHED


def train_step(parts: Components, device: torch.device) -> torch.Tensor:
    """One optimizer step on the next batch; returns the loss (not synchronised to the host)."""
    inputs, targets = next(parts.train_batches)
    inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
    parts.optimizer.zero_grad(set_to_none=True)
    loss = parts.criterion(parts.model(inputs), targets)
    loss.backward()
    parts.optimizer.step()
    if parts.scheduler is not None:
        parts.scheduler.step()
    return loss


@torch.no_grad()
def _validate(ctx: DistributedContext, parts: Components, session: FaultToleranceSession, step: int,
              metrics: MetricsWriter | None) -> None:
    """Loss on fixed validation batches (same on every rank: no collective), a heartbeat per batch."""
    if not parts.val_batches:
        return
    session.start_section("validation")
    parts.module.eval()
    total = 0.0
    for inputs, targets in parts.val_batches:
        total += parts.criterion(parts.module(inputs.to(ctx.device)), targets.to(ctx.device)).item()
        session.heartbeat()
    parts.module.train()
    session.end_section("validation")
    session.note_validated()
    val_loss = total / len(parts.val_batches)
    if ctx.is_main:
        log.info("step %d  val_loss %.4f", step, val_loss)
        if metrics is not None:
            metrics.write(step, val_loss=round(val_loss, 6))
