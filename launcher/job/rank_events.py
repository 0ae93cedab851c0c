"""What the rank monitor reported about this attempt's local ranks since the agent last looked.

Hangs, drops and ranks that never connected (``RankEvent``s of the current attempt only), plus ranks
overdue to exit after shutting monitoring down (``exit_watch.py``). A report of ranks that only wait
in a collective is held briefly for the rank they wait on, so that rank is the one blamed.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from launcher.job import blame
from launcher.job.exit_watch import ExitWatch
from launcher.workers.pcontext import WorkerGroupContext

# How long a report of ranks that only wait in a collective is held for the rank they wait for: its
# own detection comes within a check interval, and its stack capture within 0.5 s.
_HOLD_FOR_CULPRIT = 1.5


class RankEvents:
    """The monitor's reports for the agent's worker group (``group()``), on the agent's thread."""

    def __init__(self, monitor: Any | None, group: Callable[[], WorkerGroupContext | None],
                 exit_watch: ExitWatch) -> None:
        self._monitor, self._group, self._exit_watch = monitor, group, exit_watch
        self._held: list = []  # events of ranks waiting in a collective, held for the rank they wait for
        self._held_until = 0.0

    def reset(self) -> None:
        """A new attempt starts."""
        self._exit_watch.reset()
        self._held, self._held_until = [], 0.0

    def take(self) -> list:
        """Events to act on now ([] while a report of waiting ranks is held)."""
        events = self._held + self._pending() + self._exit_timeouts()
        self._held = []
        if events and self._hold(events):
            self._held = events
            return []
        return events

    def hung_now(self) -> list[int]:
        """Local ranks found silent since the last look, reported already (during a graceful stop)."""
        events = self._held + self._pending()
        self._held = []
        group = self._group()
        if not events or group is None:
            return []
        blame.report_hangs(events)
        rank_of = {pid: rank for rank, pid in group.pids().items()}
        return [rank_of[e.pid] for e in events if e.pid in rank_of]

    def _hold(self, events: list) -> bool:
        """Whether to wait (briefly) for the rank these ranks wait on: every one is blocked in a
        collective while another local rank still runs unreported."""
        group = self._group()
        reported = {e.local_rank for e in events}
        others = group is not None and any(r not in reported for r in group.running())
        if not (others and blame.only_waiting(events)):
            self._held_until = 0.0
            return False
        now = time.monotonic()
        if not self._held_until:
            self._held_until = now + _HOLD_FOR_CULPRIT
        if now < self._held_until:
            return True
        self._held_until = 0.0
        return False

    def _pending(self) -> list:
        monitor, group = self._monitor, self._group()
        if monitor is None or group is None:
            return []
        events = []
        while True:
            try:
                event = monitor.events.get_nowait()
            except queue.Empty:
                return events
            if event.pid not in group.pids().values():
                continue  # from an attempt that is already over
            if event.kind == "disconnected" and not self._still_running_after(group, event.pid, 1.0):
                continue  # the rank exited: its exit code tells whether it finished or crashed
            if event.kind == "not_connected" and not self._still_running_after(group, event.pid, 0.0):
                continue  # it exited before connecting: its exit code is what counts
            events.append(event)

    def _exit_timeouts(self) -> list:
        monitor, group = self._monitor, self._group()
        if monitor is None or group is None:
            return []
        return self._exit_watch.overdue(group.exit_codes(), monitor.shut_down_ranks())

    @staticmethod
    def _still_running_after(group: WorkerGroupContext, pid: int, wait: float) -> bool:
        rank = next(r for r, p in group.pids().items() if p == pid)
        deadline = time.monotonic() + wait
        while True:
            if group.exit_codes().get(rank) is not None:
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.01)
