"""Schemas of the ``trainer`` and ``checkpoint`` config groups, stored in Hydra's ConfigStore.

Each ``conf/<group>/*.yaml`` lists ``schema`` first in its defaults, so a misspelt key
(``trainer.max_step=5``) or an ill-typed value fails at composition, in ``train.py`` and in
``ft_launcher`` alike, before any worker starts. This module imports no torch: the launcher's
process registers it through ``hydra_plugins/pulsetrain_schemas`` without importing the loop.
The schema is where each default lives; ``train.config.checks`` range-checks the numbers, with one-line messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional  # OmegaConf needs typing.Optional, not X | None


@dataclass
class TrainerSchema:
    """``conf/trainer/``: how long to train, how often to log and evaluate, on what device."""

    device: str = "auto"
    max_steps: int = 200
    log_every: int = 20
    eval_every: int = 100
    eval_batches: int = 4
    progress: bool = True
    dist_timeout_s: float = 1800.0
    grad_accum: int = 1
    clip_grad_norm: Optional[float] = None  # noqa: UP045
    precision: str = "32"
    compile: bool = False
    # A NaN or infinite loss or gradient norm: "stop" (exit 93, restarting cannot help) or "skip" that
    # step's update, stopping after max_nonfinite_skips skips in a row (train/nonfinite.py).
    on_nonfinite: str = "stop"
    max_nonfinite_skips: int = 10
    # Stragglers (train/stragglers.py): each window of straggler_window_steps steps (0: off) the ranks compare
    # the median time of their step before the gradient all-reduce; a rank above straggler_factor times the
    # others' median for straggler_windows windows in a row is named; on_straggler "log" or "stop" (exit 69).
    straggler_window_steps: int = 20
    straggler_factor: float = 1.3
    straggler_windows: int = 3
    on_straggler: str = "log"
    # Renamed to eval_every / eval_batches: accepted here only so that an old config gets a message
    # naming the new key (train.config.checks) instead of a bare "key not in schema".
    val_every: Optional[int] = None  # noqa: UP045
    val_batches: Optional[int] = None  # noqa: UP045
    # The metric train.py returns to a sweeper, read from final_metrics.json (docs/sweeps.md); None: nothing.
    optimized_metric: Optional[str] = None  # noqa: UP045


@dataclass
class CheckpointSchema:
    """``conf/checkpoint/``: when checkpoints are written, how many are kept, and how a run resumes."""

    every: int = 50
    keep_last: int = 3
    dir: str = "checkpoints"
    resume: bool = True
    allow_fresh_start: bool = False


SCHEMAS = {"trainer": TrainerSchema, "checkpoint": CheckpointSchema}


def register_train_schemas() -> None:
    """Store each schema as ``<group>/schema`` (idempotent)."""
    from hydra.core.config_store import ConfigStore

    for group, node in SCHEMAS.items():
        ConfigStore.instance().store(group=group, name="schema", node=node)
