"""A relaunch with a changed config: what it keeps from the checkpoint and what it takes from the new config.

The rule (docs/training.md, "Changing the config of a run"): the checkpoint keeps the trajectory
(weights, optimizer moments, step, data position, RNG states); the new config supplies the settings.
A checkpoint records the ``optim`` config and ``trainer.max_steps`` it was trained with (its
``config`` entry). When they differ on resume, the optimizer's hyperparameters are the new config's
and the schedule is the new config's schedule at the resumed step, replayed from step 0, as if the
run had been configured so from the start: a longer ``max_steps`` stretches the cosine horizon (no
new warmup, no climb back to the peak), a new ``lr`` is used from the next step on. Another
optimizer class is refused (its state does not carry over); model and data changes are refused by
the fingerprint. When nothing changed, nothing is touched: resume stays bitwise exact.
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from train.errors import CheckpointError

log = logging.getLogger("train")
OPTIMIZER_CLASS = "optim.optimizer._target_"


def _flat(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}.{key}"))
        return out
    return {prefix: node}


def recorded(cfg: DictConfig) -> dict[str, Any]:
    """The settings a checkpoint records, as dotted keys: every leaf of ``optim``, and ``trainer.max_steps``."""
    optim = OmegaConf.to_container(cfg.optim, resolve=True) if cfg.get("optim") is not None else {}
    return {**_flat(optim, "optim"), "trainer.max_steps": int(cfg.trainer.max_steps)}


class TrainingSettings:
    """The checkpoint part ``config``: saves :func:`recorded`; on load applies the rule above."""

    def __init__(self, cfg: DictConfig, optimizer: torch.optim.Optimizer, scheduler: Any | None) -> None:
        self.current = recorded(cfg)
        self.optimizer, self.scheduler = optimizer, scheduler
        # The state of a run started with this config, at step 0 (the scheduler has set the first lr).
        self._fresh_groups = [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
                              for g in optimizer.param_groups]
        self._fresh_schedule = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None
        self.changed: dict[str, tuple[Any, Any]] | None = None  # None: the checkpoint recorded nothing

    def state_dict(self) -> dict[str, Any]:
        return dict(self.current)

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Called after the optimizer's and the scheduler's states were loaded (the order of checkpoint_parts)."""
        keys = sorted(set(saved) | set(self.current))
        self.changed = {k: (saved.get(k, "<unset>"), self.current.get(k, "<unset>"))
                        for k in keys if saved.get(k, "<unset>") != self.current.get(k, "<unset>")}
        if OPTIMIZER_CLASS in self.changed:
            was, now = self.changed[OPTIMIZER_CLASS]
            raise CheckpointError(f"{OPTIMIZER_CLASS}: the checkpoint was trained with {was}, this run has {now}; an "
                                  "optimizer's state does not carry over to another class: restore it, or start a "
                                  "new run directory (hydra.run.dir=...)")
        if any(k.startswith("optim.") for k in self.changed):
            self._take_the_new_settings()

    def _take_the_new_settings(self) -> None:
        steps = self.scheduler.last_epoch if self.scheduler is not None else 0
        for group, fresh in zip(self.optimizer.param_groups, self._fresh_groups, strict=True):
            for key in [k for k in group if k != "params" and k not in fresh]:
                del group[key]
            group.update(copy.deepcopy(fresh))
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(self._fresh_schedule))
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": a replay, on purpose
                warnings.simplefilter("ignore")
                for _ in range(steps):
                    self.scheduler.step()

    def report(self, step: int) -> None:
        """The one line of a resume that says what came from where."""
        kept = f"kept from the checkpoint: weights, optimizer state, step {step}, data position, RNG states"
        if self.changed is None:
            log.info("resume: %s, and the lr and schedule state (the checkpoint records no config); from the new "
                     "config: trainer.max_steps=%d", kept, self.current["trainer.max_steps"])
        elif not self.changed:
            log.info("resume: %s, lr and schedule; the new config's optim and trainer.max_steps are the same", kept)
        else:
            taken = ", ".join(f"{k} {was} -> {now}" for k, (was, now) in self.changed.items())
            schedule = (f"; the lr schedule is the new config's at step {step}"
                        if any(k.startswith("optim.") for k in self.changed) else "")
            log.info("resume: %s; from the new config: %s%s", kept, taken, schedule)
