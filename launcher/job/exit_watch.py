"""rank_exit_timeout: a rank that ended monitoring must exit once every local rank is done; else it is a hang.

Heartbeat deadlines stop at ``shutdown_workload_monitoring()``. What runs after it (leaving the
process group, joining threads, atexit handlers) can deadlock too, and would hold the job forever.
Once every local rank has either ended monitoring or exited, each one still running gets
``rank_exit_timeout`` to exit; then it is reported like a hang, with its stacks (the client keeps
its SIGUSR2 dump registered after shutdown), and the worker group is ended.
"""

from __future__ import annotations

import time

from ft.monitor.events import RankEvent
from ft.monitor.rank_watch import WatchedRank
from ft.monitor.stacks import capture_stacks

_NS = 1e9


class ExitWatch:
    """Per attempt: when every local rank was done, and which ranks were already reported."""

    def __init__(self, timeout: float | None, source: str) -> None:
        self.timeout, self.source = timeout, source
        self._all_done_ns: int | None = None
        self._reported: set[int] = set()

    def reset(self) -> None:
        self._all_done_ns = None
        self._reported.clear()

    def overdue(self, exit_codes: dict[int, int | None], shut_down: dict[int, WatchedRank]) -> list[RankEvent]:
        """Events for running ranks past their exit deadline; stacks are captured (bounded, 0.5 s)."""
        if self.timeout is None:
            return []
        running = [local for local, code in exit_codes.items() if code is None]
        if not running or any(local not in shut_down for local in running):
            self._all_done_ns = None  # some rank is still training (or never connected): not our case
            return []
        now = time.monotonic_ns()
        if self._all_done_ns is None:
            self._all_done_ns = now  # first seen now: the agent polls every --monitor-interval (0.1 s)
        waited = (now - self._all_done_ns) / _NS
        late = [shut_down[local] for local in running if local not in self._reported and waited > self.timeout]
        if not late:
            return []
        self._reported.update(rank.local_rank for rank in late)
        captured = capture_stacks([(rank.pid, rank.stack_file) for rank in late if rank.stack_file is not None])
        return [
            RankEvent(kind="exit_timeout", rank=rank.rank, local_rank=rank.local_rank, pid=rank.pid, gap=waited,
                      timeout=self.timeout, timeout_source=self.source,
                      stack_file=rank.stack_file if rank.stack_file in captured else None)
            for rank in late
        ]
