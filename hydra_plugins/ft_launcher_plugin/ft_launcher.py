"""``FtLauncher``: Hydra's launcher interface over pulsetrain's sweep runner (``launcher.sweeps``).

Hydra's sweeper (basic, Optuna, ...) hands over batches of override lists; each becomes a point run
by ``ft_launcher <flags> <program> <overrides> hydra.run.dir=<point dir>`` with its own rank monitor
and restart budget; the program is the script or module of the task function Hydra hands over. The return value of a point is its ``trainer.optimized_metric``, read from the
``final_metrics.json`` its rank 0 left in the point directory. A stop signal stops the sweep: the
process then exits 75 after writing the summary, whatever sweeper drives it. A failed point ends a
basic sweep with exit 1; other sweepers get a FAILED ``JobReturn`` and decide (Optuna goes on).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from ft import ExitCode

log = logging.getLogger("launcher")
# Hydra overrides that belong to the sweep, not to a point's own run.
_SWEEP_ONLY = ("hydra/launcher", "hydra.launcher", "hydra/sweeper", "hydra.sweeper", "hydra.sweep.",
               "hydra.run.", "hydra.mode", "hydra.job.num", "hydra.job.id")


class PointFailedError(Exception):
    """A point's job failed; the message names its exit code and run directory."""


class FtLauncher(Launcher):
    def __init__(self, **options: Any) -> None:
        self.options = OmegaConf.create(options)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.program: list[str] | None = None  # what a point's ft_launcher runs; None: points run here
        self.sweep = None  # launcher.sweeps.Sweep, created at the first batch

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra_plugins.ft_launcher_plugin import commands

        try:
            commands.check_options(self.options)
        except commands.FtLauncherOptionError as exc:  # the user's mistake: one line, exit 2, nothing started
            sys.stderr.write(f"hydra/launcher=ft: error: {exc}\n")
            sys.exit(ExitCode.USAGE_ERROR)
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        self.program = commands.program(self.options, task_function)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.ft_launcher_plugin import commands
        from launcher.sweeps import Sweep, SweepPoint, program_digest, quote, shown_overrides

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        if self.program is None:
            from hydra_plugins.ft_launcher_plugin.in_process import run_here

            return run_here(self.task_function, self.config, self.hydra_context, self._point_config,
                            job_overrides, initial_job_idx)
        logging.getLogger("launcher").setLevel(logging.INFO)  # through Hydra's own log handlers
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        if self.sweep is None:
            self.sweep = Sweep(sweep_dir, n_jobs=int(self.options.n_jobs))
        launcher_cmd = commands.launcher_command(self.options, self.config, self.program)
        command_line = commands.given_overrides(self.config, "task")
        digest = program_digest(self.program)
        points, configs = [], []
        for number, overrides in enumerate(job_overrides, start=initial_job_idx):
            cfg = self._point_config(list(overrides), number)
            run_dir = commands.point_dir(cfg)
            metric = OmegaConf.select(cfg, str(self.options.metric_key), default=None)
            command = [*commands.point_launcher(launcher_cmd, self.options, number), *list(overrides),
                       *commands.hydra_overrides(self.config, _SWEEP_ONLY),
                       f"hydra.run.dir={quote(str(run_dir))}"]
            points.append(SweepPoint(number, list(overrides), run_dir, command,
                                     None if metric is None else str(metric),
                                     shown=shown_overrides(list(overrides), command_line), program=digest))
            configs.append(cfg)
        log.info("launching %d point(s) under ft_launcher, %d at a time, in %s", len(points),
                 max(1, int(self.options.n_jobs)), sweep_dir)
        results = self.sweep.run(points)
        if self.sweep.exit_code == ExitCode.STOPPED_ON_REQUEST:  # the rest waits for a relaunch of the sweep
            sys.exit(ExitCode.STOPPED_ON_REQUEST)
        basic = self.config.hydra.runtime.choices.get("hydra/sweeper") == "basic"
        if self.sweep.exit_code == ExitCode.FAILED and basic:
            # The basic sweeper would raise the first failure with a traceback; the summary already says it all.
            log.error("a point failed (see the summary above and its run directory): the sweep fails (exit 1)")
            sys.exit(ExitCode.FAILED)
        return [_job_return(result, cfg) for result, cfg in zip(results, configs, strict=True)]

    def _point_config(self, overrides: list[str], number: int) -> DictConfig:
        assert self.config is not None and self.hydra_context is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(cfg):
            cfg.hydra.job.id = number
            cfg.hydra.job.num = number
        HydraConfig.instance().set_config(cfg)  # so ${hydra:...} in the run dir resolves for this point
        return cfg


def _job_return(result, cfg: DictConfig) -> JobReturn:
    from ft import final_metrics

    ret = JobReturn(overrides=result.point.overrides, cfg=cfg, hydra_cfg=cfg, working_dir=str(result.point.run_dir),
                    task_name=str(cfg.hydra.job.name))
    if result.outcome.finished:
        try:
            ret.return_value = final_metrics.optimized_value(result.point.run_dir, result.point.metric)
            ret.status = JobStatus.COMPLETED
            return ret
        except final_metrics.MetricNotFoundError as exc:
            ret.return_value = PointFailedError(f"point {result.point.label}: {exc}")
    else:
        ret.return_value = PointFailedError(
            f"point {result.point.label} {result.outcome.value} (exit code {result.exit_code}); see "
            f"{result.point.run_dir}{': ' + result.message if result.message else ''}")
    ret.status = JobStatus.FAILED
    return ret
