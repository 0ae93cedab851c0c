"""Fault injection (``conf/fault/``): hang, kill, exception, SIGTERM or slow steps on one rank, at one step, in one attempt.

Users run these to prove their setup recovers. A fault fires only on global rank ``rank``, when
step ``step`` is about to run (``hang_in_checkpoint``: in the first checkpoint save at or after
``step``; ``slow``: before every step from ``step`` on, for ``seconds``), and only in attempt
``attempt`` (read from ``TORCHELASTIC_RESTART_COUNT``), so the restarted attempt runs through.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from train.errors import TrainConfigError

log = logging.getLogger(__name__)

KINDS = ("none", "hang", "kill", "exception", "sigterm", "hang_in_checkpoint", "slow")


class InjectedFault(RuntimeError):
    """The exception raised by ``fault=exception`` (an ordinary crash, so the launcher restarts)."""


def current_attempt() -> int:
    """0 for the first attempt, then 1, 2, ... as the launcher restarts the workers."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


@dataclass(frozen=True)
class FaultPlan:
    """Which fault to inject, where and when."""

    kind: str = "none"
    rank: int = 0
    step: int = 0
    attempt: int = 0
    seconds: float = 0.0  # slow: the pause before each step

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> FaultPlan:
        """Validate ``cfg.fault``; bad values raise TrainConfigError naming the key."""
        values = dict(cfg or {})
        unknown = set(values) - {"kind", "rank", "step", "attempt", "seconds"}
        if unknown:
            raise TrainConfigError(f"fault: unknown key(s) {sorted(unknown)}; known: kind, rank, step, attempt, seconds")
        kind = str(values.get("kind", "none"))
        if kind not in KINDS:
            raise TrainConfigError(f"fault.kind: {kind!r} is not one of {', '.join(KINDS)}")
        numbers = {}
        for key in ("rank", "step", "attempt"):
            value = values.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TrainConfigError(f"fault.{key}: expected a whole number >= 0, got {value!r}")
            numbers[key] = value
        seconds = values.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 3600:
            raise TrainConfigError(f"fault.seconds: expected seconds between 0 and 3600, got {seconds!r}")
        return cls(kind=kind, seconds=float(seconds), **numbers)

    _slow_announced = False

    def _armed(self, kind: str, rank: int, step: int, at_or_after: bool = False) -> bool:
        if self.kind != kind or rank != self.rank or current_attempt() != self.attempt:
            return False
        return step >= self.step if at_or_after else step == self.step

    def before_step(self, rank: int, step: int) -> None:
        """Called on every rank as ``step`` begins; injects hang/kill/exception/sigterm/slow when armed."""
        for kind in ("hang", "kill", "exception", "sigterm"):
            if self._armed(kind, rank, step):
                _inject(kind, rank, step)
        if self._armed("slow", rank, step, at_or_after=True):
            if not self._slow_announced:  # one line per process, not one per step
                _inject("slow", rank, step, where=f"({self.seconds:g} s before every step from here on)")
                object.__setattr__(self, "_slow_announced", True)  # frozen: the plan itself never changes
            time.sleep(self.seconds)  # a straggler: every other rank waits for it in the all-reduce

    def in_checkpoint_save(self, rank: int, step: int) -> None:
        """Called on every rank while the checkpoint of ``step`` is being written."""
        if self._armed("hang_in_checkpoint", rank, step, at_or_after=True):
            _inject("hang", rank, step, where="while saving a checkpoint")


def _inject(kind: str, rank: int, step: int, where: str = "") -> None:
    label = f"injected fault '{kind}' on rank {rank} at step {step} (attempt {current_attempt()})"
    label += f" {where}" if where else ""
    log.warning("%s", label)
    for handler in logging.getLogger().handlers:
        handler.flush()
    if kind == "hang":
        while True:  # no heartbeats from here on: the monitor must find this rank
            time.sleep(3600)
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "exception":
        raise InjectedFault(label)
    if kind == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
