"""The training config's numbers, checked before anything starts: a bad value is one line naming its key (exit 2).

Defaults live in one place, the schema dataclasses (``train.config.schema``); code reads
``cfg.trainer.<key>`` directly and this module checks the ranges the types cannot express.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from train.errors import TrainConfigError
from train.straggler_stats import check_settings as check_straggler_settings

# trainer.precision -> the autocast dtype's name in torch (None: no autocast).
PRECISIONS = {"32": None, "bf16": "bfloat16"}


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


@dataclass(frozen=True)
class StepSettings:
    """``trainer.grad_accum``, ``clip_grad_norm``, ``precision`` and whether a non-finite update is skipped, validated once."""

    grad_accum: int = 1
    clip_grad_norm: float | None = None
    precision: str = "32"
    skip_nonfinite: bool = False  # trainer.on_nonfinite=skip: the step reads its gradient norm to decide

    @classmethod
    def from_config(cls, trainer: DictConfig) -> StepSettings:
        accum = trainer.grad_accum
        if not isinstance(accum, int) or isinstance(accum, bool) or accum < 1:
            raise TrainConfigError(f"trainer.grad_accum: expected a whole number >= 1, got {accum!r}")
        clip = trainer.clip_grad_norm
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float))
                                 or not math.isfinite(clip) or clip <= 0):
            raise TrainConfigError(f"trainer.clip_grad_norm: expected a number > 0 or null, got {clip!r}")
        precision = str(trainer.precision)
        if precision not in PRECISIONS:
            raise TrainConfigError(f"trainer.precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        return cls(accum, None if clip is None else float(clip), precision, trainer.get("on_nonfinite") == "skip")


def check_training_config(cfg: DictConfig) -> None:
    """Trainer and checkpoint numbers, renamed keys, and the step switches (grad_accum, clip_grad_norm, precision)."""
    for key in ("trainer.max_steps", "trainer.log_every", "checkpoint.every", "checkpoint.keep_last"):
        _positive(cfg, key)
    for old, new in (("val_every", "eval_every"), ("val_batches", "eval_batches")):
        if cfg.trainer.get(old) is not None:
            raise TrainConfigError(f"trainer.{old}: renamed trainer.{new}; rename it in your config")
    _positive(cfg, "trainer.eval_every", allow_zero=True)
    StepSettings.from_config(cfg.trainer)
    from train.nonfinite import check_settings  # imports torch, which this module does not need otherwise

    check_settings(cfg.trainer.on_nonfinite, cfg.trainer.max_nonfinite_skips)
    t = cfg.trainer
    check_straggler_settings(t.straggler_window_steps, t.straggler_factor, t.straggler_windows, t.on_straggler)
