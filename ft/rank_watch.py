"""Per-rank deadline bookkeeping for the monitor: which ranks are watched and which have expired."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ft.events import EventKind, RankEvent
from ft.heartbeat_slots import HeartbeatFile

_NS = 1e9


@dataclass
class WatchedRank:
    """One connected, initialized rank and the timeouts in force for it."""

    rank: int
    local_rank: int
    pid: int
    slot: int
    stack_file: Path | None
    init_ns: int
    initial: float | None
    subsequent: float | None
    initial_source: str
    subsequent_source: str
    # Set once the rank has shut down or been reported: it is never reported (again).
    done: bool = False
    # When the rank ended monitoring (shutdown request), monotonic ns.
    shutdown_ns: int | None = None

    def set_calculated(self, initial: float, subsequent: float) -> None:
        self.initial, self.subsequent = initial, subsequent
        self.initial_source = self.subsequent_source = "calculated"

    def last_sign_ns(self, heartbeats: HeartbeatFile, now_ns: int) -> tuple[int, int]:
        """(heartbeat counter, ns of the latest heartbeat or of init when there is none)."""
        sample = heartbeats.read(self.slot)
        if sample is None:  # caught mid-heartbeat on every try: the rank is beating right now
            return 1, now_ns
        count, beat_ns = sample
        return count, (beat_ns if beat_ns else self.init_ns)

    def expired(self, heartbeats: HeartbeatFile, now_ns: int | None = None) -> RankEvent | None:
        """The timeout event this rank deserves now, or None (null timeouts never fire)."""
        if self.done:
            return None
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        count, since_ns = self.last_sign_ns(heartbeats, now_ns)
        gap = max(0.0, (now_ns - since_ns) / _NS)
        if count == 0:
            kind: EventKind = "initial_timeout"
            timeout, source = self.initial, self.initial_source
        else:
            kind, timeout, source = "heartbeat_timeout", self.subsequent, self.subsequent_source
        if timeout is None or gap <= timeout:
            return None
        return self.event(kind, gap, timeout, source)

    def disconnected(self, heartbeats: HeartbeatFile) -> RankEvent:
        now_ns = time.monotonic_ns()
        _, since_ns = self.last_sign_ns(heartbeats, now_ns)
        return self.event("disconnected", max(0.0, (now_ns - since_ns) / _NS), None, None)

    def event(self, kind: EventKind, gap: float, timeout: float | None, source: str | None) -> RankEvent:
        return RankEvent(
            kind=kind,
            rank=self.rank,
            local_rank=self.local_rank,
            pid=self.pid,
            gap=gap,
            timeout=timeout,
            timeout_source=source,
            stack_file=None,
        )


@dataclass
class ExpectedWorker:
    """A worker the launcher started, watched until it connects: a rank stuck before init is a hang too."""

    local_rank: int
    rank: int
    pid: int
    start_ns: int
    # The stack file its early SIGUSR2 handler writes to; None when it has none (not forked by us).
    stack_file: Path | None
    no_stacks_reason: str | None = None
    connected: bool = False
    reported: bool = False

    def overdue(self, timeout: float | None, source: str, now_ns: int) -> RankEvent | None:
        if self.connected or self.reported or timeout is None:
            return None
        gap = (now_ns - self.start_ns) / _NS
        if gap <= timeout:
            return None
        self.reported = True
        return RankEvent(kind="not_connected", rank=self.rank, local_rank=self.local_rank, pid=self.pid, gap=gap,
                         timeout=timeout, timeout_source=source, no_stacks_reason=self.no_stacks_reason)
