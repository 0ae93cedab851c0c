"""What ``train.py`` does for sweeps: the value it returns to a sweeper; a warning when points run unwatched."""

from __future__ import annotations

import logging
import os

from omegaconf import DictConfig

from ft import ENDPOINT_ENV, final_metrics, rank_from_env

log = logging.getLogger("train")
_warned = False


def warn_if_unwatched_sweep() -> None:
    """Say once per process that Hydra's own launcher runs sweep points without hang detection."""
    global _warned
    if _warned or os.environ.get(ENDPOINT_ENV):
        return
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or hydra_cfg.runtime.choices.get("hydra/launcher") == "ft":
        return
    _warned = True
    log.warning("this sweep runs every point in this one process with hang detection off (launcher %s); "
                "add hydra/launcher=ft to run each point as its own fault-tolerant job under ft_launcher",
                hydra_cfg.runtime.choices.get("hydra/launcher"))


def optimized_value(cfg: DictConfig) -> float | None:
    """``trainer.optimized_metric`` at the end of the run (rank 0 only: it wrote the file); None when unset."""
    name = cfg.trainer.get("optimized_metric")
    if name is None or rank_from_env() != 0:
        return None
    from train.config.checks import run_dir_of

    return final_metrics.optimized_value(run_dir_of(cfg), str(name))
