"""The loop's checkpoints: when one is due, saving it inside the ``checkpoint`` section, resuming from the newest."""

from __future__ import annotations

import logging
import time

from omegaconf import DictConfig

from ft import Section
from train.checkpoint import state as training_state
from train.checkpoint.fingerprint import fingerprint
from train.checkpoint.settings import TrainingSettings
from train.checkpoint.store import CheckpointStore
from train.components import Components
from train.distributed import DistributedContext
from train.fault_tolerance import FaultToleranceSession
from train.faults import FaultPlan

log = logging.getLogger(__name__)


class Checkpointer:
    """Saves every ``checkpoint.every`` steps and at the last; a part more to save is one entry in
    :func:`train.checkpoint.state.checkpoint_parts` (or ``Components.extra_state``)."""

    def __init__(self, cfg: DictConfig, store: CheckpointStore, ctx: DistributedContext,
                 session: FaultToleranceSession, fault: FaultPlan, parts: Components) -> None:
        self.every, self.max_steps = cfg.checkpoint.every, cfg.trainer.max_steps
        self.resume_enabled, self.allow_fresh_start = cfg.checkpoint.resume, cfg.checkpoint.allow_fresh_start
        self.store, self.ctx, self.session, self.fault = store, ctx, session, fault
        self.fingerprint = fingerprint(cfg)
        self.settings = TrainingSettings(cfg, parts.optimizer, parts.scheduler)
        self.stateful = training_state.checkpoint_parts(ctx, parts, session, self.settings)
        self.last_saved = 0  # the step of the newest checkpoint this attempt has (resumed or saved)

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.max_steps

    def save(self, step: int) -> None:
        """Collective (every rank, same step): heartbeats around it, no per-step timeout inside it."""
        session, rank = self.session, self.ctx.rank
        session.heartbeat()
        began = time.perf_counter()
        with session.section(Section.CHECKPOINT):
            path = training_state.save(self.ctx, self.store, self.stateful, step, self.fingerprint,
                                       in_save=lambda: self.fault.in_checkpoint_save(rank, step))
            if path is not None:
                session.persist_state()
        session.note_checkpoint_saved(step, time.perf_counter() - began)
        session.heartbeat()
        self.last_saved = step

    def resume(self) -> int:
        """Collective: load the newest usable checkpoint (``checkpoint.resume``); the step to continue from."""
        if not self.resume_enabled:
            return 0
        self.session.heartbeat()
        step = training_state.resume(self.ctx, self.store, self.stateful, self.fingerprint, self.allow_fresh_start)
        self.session.heartbeat()
        self.last_saved = step
        if step:
            self.settings.report(step)
        return step
