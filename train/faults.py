"""Fault injection (``conf/fault/``): a registry of fault kinds, and the plan that fires one on one rank, at one step, in one attempt.

Users run these to prove their setup recovers. A fault fires only on global rank ``rank``, when
step ``step`` is about to run (or in the first checkpoint save at or after it), and only in attempt
``attempt`` (read from ``TORCHELASTIC_RESTART_COUNT``), so the restarted attempt runs through.

A new kind is one class in any module registered with :func:`fault_kind` (the built-in ones are in
:mod:`train.fault_kinds`), plus one ``conf/fault/<kind>.yaml``. Validation, the drill (``examples/fault_drill.py``) and the table in
``docs/training.md`` (checked by a test) all read :data:`FAULT_KINDS`. A kind outside this module
is named by its import path, ``fault.kind=mypkg.faults.DiskFull``, and registers itself on import.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ft import contracts
from train.errors import TrainConfigError

log = logging.getLogger(__name__)

COMMON_KEYS = ("kind", "rank", "step", "attempt")
# Kinds that fire as a step begins (rank 0 logs them as events before they fire).
STEP_FAULTS = ("hang", "kill", "exception", "sigterm")


class InjectedFault(RuntimeError):
    """The exception raised by ``fault=exception`` (an ordinary crash, so the launcher restarts)."""


def current_attempt() -> int:
    """0 for the first attempt, then 1, 2, ... as the launcher restarts the workers."""
    return int(os.environ.get(contracts.RESTART_COUNT_ENV, "0"))


class FaultKind:
    """One kind of fault. Subclasses override the hook where they fire; the plan calls it only when armed.

    Class attributes describe the kind for the docs table and the drill; ``options`` declares the
    extra keys the kind reads from ``cfg.fault`` (name -> default) and ``check_option`` validates them.
    """

    name: ClassVar[str] = ""
    what_happens: ClassVar[str] = ""
    who_recovers: ClassVar[str] = ""
    in_drill: ClassVar[bool] = True  # examples/fault_drill.py injects it and expects the job to finish
    drill_relaunches: ClassVar[bool] = False  # the drill expects exit 75 and a relaunch that finishes
    repeats: ClassVar[bool] = False  # before_step fires at every step from ``step`` on, not only at ``step``
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan

    @classmethod
    def check_option(cls, key: str, value: Any) -> Any:
        """Validate one extra key; returns the value to use. Kinds with options override it."""
        return value

    def before_step(self, step: int) -> None:
        """Fires as ``step`` is about to run, on the plan's rank and attempt."""

    def in_checkpoint_save(self, step: int) -> None:
        """Fires while the checkpoint of ``step`` is written, on the plan's rank and attempt."""

    def announce(self, step: int, where: str = "") -> str:
        """Log what fires, flushed before the fault can take the process down; returns the label."""
        label = f"injected fault '{self.name}' on rank {self.plan.rank} at step {step} (attempt {current_attempt()})"
        label += f" {where}" if where else ""
        log.warning("%s", label)
        for handler in logging.getLogger().handlers:
            handler.flush()
        return label


FAULT_KINDS: dict[str, type[FaultKind]] = {}


def fault_kind(name: str) -> Callable[[type[FaultKind]], type[FaultKind]]:
    """Class decorator: register a :class:`FaultKind` under ``name`` (the value of ``fault.kind``)."""
    def register(cls: type[FaultKind]) -> type[FaultKind]:
        if not (isinstance(cls, type) and issubclass(cls, FaultKind)):
            raise TypeError(f"@fault_kind({name!r}) needs a FaultKind subclass, got {cls!r}")
        if FAULT_KINDS.get(name, cls) is not cls:
            raise ValueError(f"fault kind {name!r} is already registered by {FAULT_KINDS[name].__qualname__}")
        cls.name = name
        FAULT_KINDS[name] = cls
        return cls
    return register


def kind_class(kind: str) -> type[FaultKind]:
    """The registered class of ``kind``; a dotted ``module.Class`` path is imported first."""
    if kind in FAULT_KINDS:
        return FAULT_KINDS[kind]
    module, _, attribute = kind.rpartition(".")
    if module:
        try:
            cls = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise TrainConfigError(f"fault.kind: cannot import {kind!r} ({exc})") from None
        if isinstance(cls, type) and issubclass(cls, FaultKind) and cls.name in FAULT_KINDS:
            return cls
        raise TrainConfigError(f"fault.kind: {kind!r} is not a class registered with @fault_kind")
    raise TrainConfigError(f"fault.kind: {kind!r} is not one of {', '.join(FAULT_KINDS)} "
                           "(or an import path such as mypkg.faults.MyFault)")


def hang_forever(kind: FaultKind, step: int, where: str = "") -> None:
    """No heartbeats from here on: the monitor must find this rank."""
    kind.announce(step, where)
    while True:
        time.sleep(3600)



# --------------------------------------------------------------------------- the plan
@dataclass
class FaultPlan:
    """Which fault to inject, where and when; ``options`` holds the kind's extra keys."""

    kind: str = "none"
    rank: int = 0
    step: int = 0
    attempt: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    _fault: FaultKind = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cls = kind_class(self.kind)
        self.kind = cls.name
        self.options = {**cls.options, **self.options}
        self._fault = cls(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> FaultPlan:
        """Validate ``cfg.fault``; bad values raise TrainConfigError naming the key."""
        values = dict(cfg or {})
        kind_cls = kind_class(str(values.get("kind", "none")))
        known = (*COMMON_KEYS, *kind_cls.options)
        unknown = set(values) - set(known)
        if unknown:
            raise TrainConfigError(f"fault: unknown key(s) {sorted(unknown)} for kind '{kind_cls.name}'; "
                                   f"known: {', '.join(known)}")
        numbers = {}
        for key in ("rank", "step", "attempt"):
            value = values.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TrainConfigError(f"fault.{key}: expected a whole number >= 0, got {value!r}")
            numbers[key] = value
        options = {key: kind_cls.check_option(key, values.get(key, default))
                   for key, default in kind_cls.options.items()}
        return cls(kind=kind_cls.name, options=options, **numbers)

    def warn_if_absent(self, world_size: int) -> None:
        if self.kind != "none" and self.rank >= world_size:
            log.warning("fault.rank=%d does not exist with %d rank(s): the '%s' fault will not fire",
                        self.rank, world_size, self.kind)

    def _armed(self, rank: int) -> bool:
        return rank == self.rank and current_attempt() == self.attempt

    def before_step(self, rank: int, step: int) -> None:
        """Called on every rank as ``step`` begins; fires at ``step`` (``slow``: from ``step`` on)."""
        if self._armed(rank) and step >= self.step:
            if step == self.step or self._fault.repeats:
                self._fault.before_step(step)

    def in_checkpoint_save(self, rank: int, step: int) -> None:
        """Called on every rank while the checkpoint of ``step`` is being written."""
        if self._armed(rank) and step >= self.step:
            self._fault.in_checkpoint_save(step)


from train import fault_kinds  # noqa: E402,F401  (registers the built-in kinds, which need the names above)
