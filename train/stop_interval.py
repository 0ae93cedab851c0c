"""How often the ranks agree on a stop: chosen once per attempt from the slowest rank's measured step time."""

from __future__ import annotations

import logging
import time

from ft import all_reduce_max, process_group_active

log = logging.getLogger("train.fault_tolerance")

# Agree on a stop about this often (seconds); the first steps of an attempt check every step.
STOP_CHECK_INTERVAL_S = 0.2
_SKIPPED_CALLS, _TIMED_CALLS, _MAX_STOP_CHECK_EVERY = 5, 20, 100


class StopInterval:
    """``every``: None while steps are being timed (check every step), then a step count shared by all ranks.

    Often enough that a stop follows a signal within a fraction of a second plus two steps, rarely
    enough to cost well under 1% of throughput on millisecond steps.
    """

    def __init__(self) -> None:
        self.every: int | None = None
        self._timed_calls, self._timing_started = 0, 0.0

    def check_now(self, step: int) -> bool:
        """Collective once (when the interval is chosen); True on the steps the agreement runs."""
        if self.every is None:
            self._choose()
            if self.every is None:
                return True
        return step % self.every == 0

    def _choose(self) -> None:
        if not process_group_active():
            self.every = 1  # one process: the check is a flag read
            return
        self._timed_calls += 1
        if self._timed_calls == _SKIPPED_CALLS:
            self._timing_started = time.perf_counter()
        elif self._timed_calls == _SKIPPED_CALLS + _TIMED_CALLS:
            local = (time.perf_counter() - self._timing_started) / _TIMED_CALLS
            (step_s,) = all_reduce_max([local])  # every rank must choose the same interval
            self.every = max(1, min(_MAX_STOP_CHECK_EVERY, int(STOP_CHECK_INTERVAL_S / step_s)))
            log.debug("stop agreement every %d steps (slowest rank's step %.2f ms)", self.every, step_s * 1e3)
