"""The training config's numbers, checked before anything starts: a bad value is one line naming its key (exit 2)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from train.errors import TrainConfigError
from train.step import StepSettings


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


def check_training_config(cfg: DictConfig) -> None:
    """Trainer and checkpoint numbers, renamed keys, and the step switches (grad_accum, clip_grad_norm, precision)."""
    for key in ("trainer.max_steps", "trainer.log_every", "checkpoint.every", "checkpoint.keep_last"):
        _positive(cfg, key)
    for old, new in (("val_every", "eval_every"), ("val_batches", "eval_batches")):
        if cfg.trainer.get(old) is not None:
            raise TrainConfigError(f"trainer.{old}: renamed trainer.{new}; rename it in your config")
    _positive(cfg, "trainer.eval_every", allow_zero=True)
    StepSettings.from_config(cfg.trainer)
