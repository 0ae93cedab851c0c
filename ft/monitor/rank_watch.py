"""Per-rank deadline bookkeeping for the monitor: which ranks are watched and which have expired."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from ft.monitor.events import EventKind, RankEvent
from ft.shared.heartbeat_slots import HeartbeatFile, SlotReading

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
    # Sections: the name behind each id the rank announced, and (timeout, source) by name.
    section_names: dict[int, str] = field(default_factory=dict)
    section_timeouts: dict[str, tuple[float | None, str]] = field(default_factory=dict)
    out_of_section: tuple[float | None, str] = (None, "config")

    def set_calculated(self, initial: float, subsequent: float) -> None:
        self.initial, self.subsequent = initial, subsequent
        self.initial_source = self.subsequent_source = "calculated"

    def set_calculated_sections(self, sections: dict[str, float], out_of_section: float | None) -> None:
        self.section_timeouts.update({name: (seconds, "calculated") for name, seconds in sections.items()})
        if out_of_section is not None:
            self.out_of_section = (out_of_section, "calculated")

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
        reading = heartbeats.read_slot(self.slot)
        if reading is None:  # caught mid-write on every try: the rank is beating right now
            return None
        return self._section_expired(reading, now_ns) or self._heartbeat_expired(reading, now_ns)

    def _heartbeat_expired(self, reading: SlotReading, now_ns: int) -> RankEvent | None:
        count, since_ns = reading.count, (reading.beat_ns or self.init_ns)
        gap = max(0.0, (now_ns - since_ns) / _NS)
        if count == 0:
            kind: EventKind = "initial_timeout"
            timeout, source = self.initial, self.initial_source
        else:
            kind, timeout, source = "heartbeat_timeout", self.subsequent, self.subsequent_source
        if timeout is None or gap <= timeout:
            return None
        return self.event(kind, gap, timeout, source)

    def _section_expired(self, reading: SlotReading, now_ns: int) -> RankEvent | None:
        if reading.open_mask == 0:
            timeout, source = self.out_of_section
            gap = (now_ns - (reading.out_of_section_since_ns or self.init_ns)) / _NS
            if timeout is not None and gap > timeout:
                return self.event("out_of_section_timeout", gap, timeout, source)
            return None
        for section, name in self.section_names.items():
            if reading.open_mask >> section & 1:
                timeout, source = self.section_timeouts.get(name, (None, "config"))
                gap = (now_ns - reading.starts_ns[section]) / _NS
                if timeout is not None and gap > timeout:
                    return dataclasses.replace(self.event("section_timeout", gap, timeout, source), section=name)
        return None

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
