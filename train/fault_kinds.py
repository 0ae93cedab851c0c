"""The built-in fault kinds (``fault=hang``, ``kill``, ``exception``, ``sigterm``, ``hang_in_checkpoint``, ``slow``).

Each registers itself in :data:`train.faults.FAULT_KINDS` with ``@fault_kind``, exactly as a fork's
own kind does from its own module.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from train import faults
from train.errors import TrainConfigError
from train.faults import FaultKind, InjectedFault, fault_kind


@fault_kind("none")
class NoFault(FaultKind):
    what_happens = "nothing (the default)"
    who_recovers = ""
    in_drill = False


@fault_kind("hang")
class Hang(FaultKind):
    what_happens = "the rank sleeps forever, sending no heartbeats"
    who_recovers = "the monitor finds it after `rank_heartbeat_timeout`; the launcher restarts"

    def before_step(self, step: int) -> None:
        faults.hang_forever(self, step)


@fault_kind("kill")
class Kill(FaultKind):
    what_happens = "the rank sends itself SIGKILL"
    who_recovers = "the launcher sees the dead worker and restarts"

    def before_step(self, step: int) -> None:
        self.announce(step)
        os.kill(os.getpid(), signal.SIGKILL)


@fault_kind("exception")
class RaiseException(FaultKind):
    what_happens = "the rank raises `InjectedFault`"
    who_recovers = "as `kill` (exit code 1, with the traceback)"

    def before_step(self, step: int) -> None:
        raise InjectedFault(self.announce(step))


@fault_kind("sigterm")
class Sigterm(FaultKind):
    what_happens = "the rank sends itself SIGTERM"
    who_recovers = "all ranks stop together, exit 75; relaunch continues"
    drill_relaunches = True

    def before_step(self, step: int) -> None:
        self.announce(step)
        os.kill(os.getpid(), signal.SIGTERM)


@fault_kind("hang_in_checkpoint")
class HangInCheckpoint(FaultKind):
    what_happens = ("the rank hangs in the first checkpoint save at or after `step` (rank 0: temporary "
                    "file written, not renamed)")
    who_recovers = "as `hang`; the half-written file is discarded"

    def in_checkpoint_save(self, step: int) -> None:
        faults.hang_forever(self, step, "while saving a checkpoint")


@fault_kind("slow")
class Slow(FaultKind):
    what_happens = ("the rank pauses `fault.seconds` (default 0.05) before every step from `step` on, and "
                    "computes (busy) for `fault.factor` - 1 times its own recent step time (`factor: 1.5`: steps "
                    "1.5x as long; default 1: none): a straggler the other ranks wait for")
    who_recovers = ("nothing to recover; it slows a short job down so it can be signalled mid-run (the SLURM "
                    "tests) without changing its weights; with `factor` it is the straggler that "
                    "`trainer.straggler_*` must name")
    in_drill = False
    repeats = True
    options = {"seconds": 0.05, "factor": 1.0}
    _announced = False
    _last: float | None = None  # when the previous step began, and the extra time it took
    _paused = 0.0
    _recent: tuple[float, ...] = ()  # the last few steps' times, without their pauses

    @classmethod
    def check_option(cls, key: str, value: Any) -> Any:
        if key == "factor":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 100:
                raise TrainConfigError(f"fault.factor: expected a number between 1 and 100, got {value!r}")
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
            raise TrainConfigError(f"fault.{key}: expected seconds between 0 and 3600, got {value!r}")
        return float(value)

    def before_step(self, step: int) -> None:
        seconds, factor = self.plan.options["seconds"], self.plan.options.get("factor", 1.0)
        if not self._announced:  # one line per process, not one per step
            extra = f", and busy for {factor - 1:g}x its step time" if factor != 1 else ""
            self.announce(step, f"({seconds:g} s before every step from here on{extra})")
            self._announced = True
        if factor != 1:  # busy, as slower compute is: the rank's own CPU time grows, as a straggler's does
            now = time.perf_counter()
            if self._last is not None:  # the previous step without its extra: data, compute, the rest of the loop
                self._recent = (*self._recent[-4:], max(0.0, now - self._last - self._paused))
                until = now + (factor - 1) * sorted(self._recent)[len(self._recent) // 2]  # a save does not count
                while time.perf_counter() < until:
                    pass
            self._last, self._paused = now, time.perf_counter() - now
        time.sleep(seconds)  # every other rank waits for it in the all-reduce
