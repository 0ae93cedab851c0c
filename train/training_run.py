"""``TrainingRun``: everything one attempt of one rank works with, built by ``train.loop.run``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from train.checkpoint.checkpointer import Checkpointer
from train.checkpoint.store import CheckpointStore
from train.components import Components
from train.distributed import DistributedContext
from train.fault_tolerance import FaultToleranceSession
from train.faults import FaultPlan
from train.nonfinite import NonFiniteGuard


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
    guard: NonFiniteGuard
    parts: Components | None = None  # built by build_and_resume
    checkpointer: Checkpointer | None = None
    step: int = 0
