"""Points of a task function no other process can start (a closure, a callable object): run here, in turn.

This is what Hydra's basic launcher does: each point through ``run_job`` in the sweep's own process.
Such points have no rank monitor and no restarts; the plugin says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger("launcher")


def run_here(task_function: TaskFunction, config: DictConfig, hydra_context: HydraContext,
             point_config: Callable[[list[str], int], DictConfig],
             job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Run each point with ``run_job`` in this process; ``point_config`` composes a point's config."""
    log.warning("hydra/launcher=ft: the task function %r cannot be started by another process (a closure or "
                "a callable object); running %d point(s) in this process, without fault tolerance",
                task_function, len(job_overrides))
    returns = []
    for number, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", number, " ".join(filter_overrides(overrides)))
        returns.append(run_job(hydra_context=hydra_context, task_function=task_function,
                               config=point_config(list(overrides), number), job_dir_key="hydra.sweep.dir",
                               job_subdir_key="hydra.sweep.subdir"))
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return returns
