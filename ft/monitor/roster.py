"""The workers of the current attempt as the launcher started them: who has not connected, who has shut down.

The monitor thread updates it; the owner's thread reads the shut-down ranks (rank_exit_timeout),
so that part is guarded by a lock. Cleared between attempts.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ft.monitor.events import RankEvent
from ft.monitor.rank_watch import ExpectedWorker, WatchedRank


class AttemptRoster:
    """Started workers until they connect (a hang before init is a hang too), and ranks that ended monitoring."""

    def __init__(self) -> None:
        self._expected: dict[int, ExpectedWorker] = {}  # local rank -> started worker
        self._shut_down: dict[int, WatchedRank] = {}  # local rank -> rank that ended monitoring
        self._lock = threading.Lock()

    def expect(self, workers: list[ExpectedWorker]) -> None:
        self._expected.update({worker.local_rank: worker for worker in workers})

    def saw(self, rank: WatchedRank) -> None:
        """After each request a rank made: it has connected, and perhaps shut down."""
        if rank.local_rank in self._expected:
            self._expected[rank.local_rank].connected = True
        if rank.shutdown_ns is not None:
            with self._lock:
                self._shut_down[rank.local_rank] = rank

    def not_connected(self, connected: set[int], timeout: float | None, source: str,
                      now_ns: int) -> list[tuple[RankEvent, Path | None]]:
        """Workers still not connected ``timeout`` after their start, each reported once."""
        found = []
        for worker in self._expected.values():
            worker.connected = worker.connected or worker.local_rank in connected
            event = worker.overdue(timeout, source, now_ns)
            if event is not None:
                found.append((event, worker.stack_file))
        return found

    def shut_down(self) -> dict[int, WatchedRank]:
        with self._lock:
            return dict(self._shut_down)

    def clear(self) -> None:
        self._expected.clear()
        with self._lock:
            self._shut_down.clear()
