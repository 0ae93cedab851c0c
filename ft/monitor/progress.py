"""What an attempt's ranks achieved, as the monitor sees it: their first heartbeat and their last completed checkpoint.

The launcher counts time lost from it: a failed attempt's work is thrown away from its last
checkpoint on (not from its start), and the next attempt is productive again from its first
heartbeat. Read from the heartbeat slots the monitor reads anyway, so it works for any script that
uses the sections API: a ``checkpoint`` section (``ft.Section.CHECKPOINT``) that closed is a
completed checkpoint. A section open and closed between two reads still counts, since its start
time word changed. The monitor thread writes; the owner's thread reads (``progress()``), under a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ft.shared.contracts import Section
from ft.shared.heartbeat_slots import SlotReading

_NS = 1e9


@dataclass(frozen=True)
class AttemptProgress:
    """Monotonic seconds (``time.monotonic()``'s clock), None when it has not happened in this attempt."""

    first_heartbeat: float | None  # when every rank of the attempt had sent a heartbeat
    last_checkpoint: float | None  # when a ``checkpoint`` section had last closed on every rank
    # Heartbeats each local rank had sent in the attempt (where a failing rank was: the launcher's step).
    heartbeats: dict[int, int] = field(default_factory=dict, compare=False)


@dataclass
class _Rank:
    first_beat_ns: int = 0
    counted_start_ns: int = 0  # start time of the last checkpoint section seen closed
    checkpoint_end_ns: int = 0
    beats: int = 0


class ProgressWatch:
    """Per attempt, per local rank: the first heartbeat seen and when its last checkpoint section closed."""

    def __init__(self, section: str = Section.CHECKPOINT.value) -> None:
        self._section = section
        self._ranks: dict[int, _Rank] = {}
        self._lock = threading.Lock()

    def see(self, local_rank: int, section_names: dict[int, str], reading: SlotReading | None, now_ns: int) -> None:
        """One read of a rank's slot (None: caught mid-write; the rank is only registered)."""
        with self._lock:
            rank = self._ranks.setdefault(local_rank, _Rank())
            if reading is None:
                return
            if not rank.first_beat_ns and reading.beat_ns:
                rank.first_beat_ns = reading.beat_ns
            rank.beats = max(rank.beats, reading.count)
            section = next((i for i, name in section_names.items() if name == self._section), None)
            if section is None or section >= len(reading.starts_ns):
                return
            start = reading.starts_ns[section]
            if not start or reading.open_mask >> section & 1 or start == rank.counted_start_ns:
                return
            # Closed since the last read: when no section is open, the slot says exactly when the last one closed.
            out_since = reading.out_of_section_since_ns
            exact = reading.open_mask == 0 and out_since >= start
            rank.counted_start_ns, rank.checkpoint_end_ns = start, out_since if exact else now_ns

    def clear(self) -> None:
        """A new attempt: forget every rank."""
        with self._lock:
            self._ranks.clear()

    def progress(self) -> AttemptProgress:
        """The attempt so far; a moment counts once every rank seen in it reached it."""
        with self._lock:
            ranks = dict(self._ranks)
        if not ranks:
            return AttemptProgress(None, None)
        beats = [r.first_beat_ns for r in ranks.values()]
        ends = [r.checkpoint_end_ns for r in ranks.values()]
        return AttemptProgress(max(beats) / _NS if all(beats) else None, min(ends) / _NS if all(ends) else None,
                               {local: r.beats for local, r in ranks.items()})
