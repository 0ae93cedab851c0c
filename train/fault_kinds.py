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
    what_happens = ("the rank pauses `fault.seconds` (default 0.05) before every step from `step` on: a "
                    "straggler the other ranks wait for")
    who_recovers = ("nothing to recover; it slows a short job down so it can be signalled mid-run (the SLURM "
                    "tests) without changing its weights")
    in_drill = False
    repeats = True
    options = {"seconds": 0.05}
    _announced = False

    @classmethod
    def check_option(cls, key: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
            raise TrainConfigError(f"fault.{key}: expected seconds between 0 and 3600, got {value!r}")
        return float(value)

    def before_step(self, step: int) -> None:
        if not self._announced:  # one line per process, not one per step
            self.announce(step, f"({self.plan.options['seconds']:g} s before every step from here on)")
            self._announced = True
        time.sleep(self.plan.options["seconds"])  # every other rank waits for it in the all-reduce
