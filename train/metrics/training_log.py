"""What rank 0 records while training: step metrics when a log line is due, validation, events, final values."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from ft import MetricEvent, final_metrics, write_json_atomic
from train.faults import STEP_FAULTS, FaultPlan, current_attempt
from train.metrics.console import ProgressReport
from train.metrics.means import MetricMeans
from train.metrics.ranked_logging import RankedLogger
from train.metrics.sinks import MetricsSinks, build_sinks
from train.objective import with_derived

log = logging.getLogger("train")  # every rank, into its own log file
main_log = RankedLogger("train", rank_zero_only=True)


class TrainingLog:
    """The progress bar, the metric sinks and the objective's running means of one attempt (rank 0 only)."""

    def __init__(self, cfg: DictConfig, run_dir: Path, attempt: int, start_step: int, is_main: bool,
                 fault: FaultPlan, world_size: int, objective: Any = None) -> None:
        self.run_dir, self.is_main, self.objective = run_dir, is_main, objective
        self.sinks = build_sinks(cfg.get("logger"), run_dir, attempt, start_step) if is_main else MetricsSinks([])
        self.report = ProgressReport(cfg.trainer.max_steps, start_step, cfg.trainer.log_every,
                                     enabled=is_main and cfg.trainer.progress)
        self.means: MetricMeans | None = MetricMeans() if is_main else None  # what train_step adds into
        # A fault that fires as a step begins is logged first (rank 0 logs it whichever rank it hits).
        self._fault_step = (fault.step if fault.kind in STEP_FAULTS and fault.attempt == current_attempt()
                            and fault.rank < world_size else None)
        self._fault = fault
        self._first_step, self._started = start_step, time.perf_counter()
        if start_step >= cfg.trainer.max_steps:
            log.info("already at step %d of %d: nothing to do", start_step, cfg.trainer.max_steps)
        if attempt > 0 or start_step > 0:  # where a restart (or a relaunch) picked up: curves show the lost time
            self.event(MetricEvent.ATTEMPT_START, start_step, attempt=attempt, resumed_from=start_step)

    def event(self, event: MetricEvent, step: int, **fields: Any) -> None:
        self.sinks.log({"event": event.value, **fields}, step)

    def before_step(self, step: int) -> None:
        if step == self._fault_step:
            self.event(MetricEvent.FAULT_INJECTED, step, kind=self._fault.kind, rank=self._fault.rank)

    def after_step(self, step: int, loss: torch.Tensor, grad_norm: float | None, lr: float) -> None:
        """Count the step; on a logged step (and only then) read the loss and the means to the host."""
        if self.means is not None:
            self.means.count()
        due = self.is_main and self.report.due(step)
        loss_value = loss.item() if due else None
        self.report.step(step, loss_value)
        if due:
            values = {"loss": round(loss_value, 6), "steps_per_s": round(self.report.steps_per_s, 2)}
            if grad_norm is not None:
                values["grad_norm"] = round(grad_norm, 6)
            means = with_derived(self.objective, {"loss": values["loss"], **self.means.take()})  # e.g. ppl
            self.sinks.log({**values, **means, "lr": lr}, step)

    def validation(self, step: int, values: dict[str, float]) -> None:
        main_log.info("step %d  %s", step, "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
        self.sinks.log(values, step)

    def stopped_on_request(self, step: int) -> None:
        self.event(MetricEvent.STOPPED_ON_REQUEST, step)
        log.log(logging.WARNING if self.is_main else logging.INFO, "stopped on request after step %d (checkpoint "
                "saved); relaunch with the same run dir to continue: hydra.run.dir=%s", step, self.run_dir)

    def finish(self, step: int, checkpoint_dir: Path) -> None:
        """The attempt's summary line; ``final_metrics.json``: the last value of each metric (rank 0).

        A relaunch of a finished run trains nothing and keeps the file it wrote.
        """
        if step > self._first_step:
            main_log.info("done: step %d/%d, %.1f steps/s over this attempt's %d steps; final checkpoint in %s",
                          step, self.report.max_steps, (step - self._first_step) / (time.perf_counter() - self._started),
                          step - self._first_step, checkpoint_dir)
        if self.is_main and self.sinks.last:
            write_json_atomic(self.run_dir / final_metrics.FILE_NAME, {"step": step, **self.sinks.last})

    def close(self) -> None:
        self.report.close()
        self.sinks.close()
