"""Shared-memory heartbeat slots: each rank stores its heartbeats and open sections; the monitor reads them whole.

A heartbeat is a clock read and a few stores into a file mapped by both processes, so it never
waits on the monitor; so is a section start or end. Slots are 256 bytes apart (four cache lines)
and never reused within a file, so a rank left over from an earlier attempt cannot write into a
new rank's slot.

A slot is 32 aligned 8-byte words: a sequence number, the heartbeat counter and time, the mask of
open sections, when the last section closed (the start of the current out-of-section stretch),
and the start time of each section by id. A writer makes the sequence odd, stores, then makes it
even again (a seqlock); the reader retries until it sees the same even sequence before and after
reading the slot. Every
store is a single aligned 8-byte store (``memoryview.cast("Q")`` item assignment is one
``memcpy`` of 8 bytes), never the zero-fill-then-write of ``struct.pack_into``, which let the
monitor read a counter with time 0. The time word alone decides liveness and 0 never counts as
a heartbeat, so even a CPU that reorders stores can at worst show the previous heartbeat.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import NamedTuple

from ft.shared.errors import RankMonitorError

SLOT_BYTES = 256
SLOT_CAPACITY = 4096
_WORDS_PER_SLOT = SLOT_BYTES // 8
_SEQ, _COUNT, _TIME, _OPEN, _OUT_SINCE, _STARTS = 0, 1, 2, 3, 4, 5
# Distinct section names one rank may use (one start-time word each).
MAX_SECTIONS = _WORDS_PER_SLOT - _STARTS
# A read overlaps a write only for the few stores of one heartbeat; after this many tries the
# writer has been caught mid-heartbeat every time, which itself proves the rank is alive.
_READ_TRIES = 1000


class SlotReading(NamedTuple):
    """One consistent read of a slot. Time 0 means "never": no heartbeat yet, or no section closed yet."""

    count: int
    beat_ns: int
    open_mask: int  # bit i set: section id i is open
    out_of_section_since_ns: int
    starts_ns: list[int]  # by section id


class HeartbeatFile:
    """Monitor side: creates the file, hands out fresh slots and reads them."""

    def __init__(self, path: Path, capacity: int = SLOT_CAPACITY) -> None:
        self.path = path
        self.capacity = capacity
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Reserve the pages now: a sparse file on a full tmpfs turns the first store into SIGBUS.
            os.posix_fallocate(fd, 0, capacity * SLOT_BYTES)
            self._map = mmap.mmap(fd, capacity * SLOT_BYTES)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise RankMonitorError(
                f"cannot reserve {capacity * SLOT_BYTES} bytes for heartbeats in {path.parent}: "
                f"{exc.strerror or exc}; free space there (df -h {path.parent}) or set TMPDIR") from None
        finally:
            os.close(fd)
        self._words = memoryview(self._map).cast("Q")
        self._next = 0

    @property
    def used(self) -> int:
        return self._next

    def allocate(self) -> int:
        """Return a never-used slot index (zeroed), or raise if the file is full."""
        if self._next >= self.capacity:
            raise RuntimeError(f"all {self.capacity} heartbeat slots are used")
        slot = self._next
        self._next += 1
        base = slot * _WORDS_PER_SLOT
        for word in range(_WORDS_PER_SLOT):
            self._words[base + word] = 0
        return slot

    def read_slot(self, slot: int) -> SlotReading | None:
        """The whole slot, consistent; None if every try met a write in progress."""
        words, base = self._words, slot * _WORDS_PER_SLOT
        for _ in range(_READ_TRIES):
            values = words[base : base + _WORDS_PER_SLOT].tolist()
            if values[_SEQ] & 1 or words[base + _SEQ] != values[_SEQ]:
                continue  # a write is (or was) in progress
            beat_ns = values[_TIME]
            return SlotReading(values[_COUNT] if beat_ns else 0, beat_ns, values[_OPEN], values[_OUT_SINCE],
                               values[_STARTS:])
        return None

    def read(self, slot: int) -> tuple[int, int] | None:
        """(counter, monotonic ns of the latest heartbeat); (0, 0) before the first; None if mid-write."""
        reading = self.read_slot(slot)
        return None if reading is None else (reading.count, reading.beat_ns)

    def close(self, unlink: bool = True) -> None:
        self._words.release()
        self._map.close()
        if unlink:
            self.path.unlink(missing_ok=True)


class HeartbeatWriter:
    """Rank side: maps the monitor's file and writes into one slot."""

    def __init__(self, path: str | os.PathLike[str], slot: int) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            if slot < 0 or (slot + 1) * SLOT_BYTES > size:
                raise ValueError(f"slot {slot} is outside the heartbeat file {path} ({size} bytes)")
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._words = memoryview(self._map).cast("Q")
        self._seq_at = slot * _WORDS_PER_SLOT + _SEQ
        self._count_at = self._seq_at + _COUNT
        self._time_at = self._seq_at + _TIME
        self._seq = self._words[self._seq_at]

    def write(self, counter: int, now_ns: int) -> None:
        words, seq = self._words, self._seq + 1
        words[self._seq_at] = seq  # odd: a reader now retries
        words[self._count_at] = counter
        words[self._time_at] = now_ns
        self._seq = seq + 1
        words[self._seq_at] = seq + 1

    def write_sections(self, open_mask: int, out_since_ns: int, section: int, start_ns: int) -> None:
        """Store the open-section mask, the out-of-section start and (``section`` >= 0) one section's start."""
        words, seq, base = self._words, self._seq + 1, self._seq_at
        words[base] = seq
        if section >= 0:
            words[base + _STARTS + section] = start_ns
        words[base + _OPEN] = open_mask
        words[base + _OUT_SINCE] = out_since_ns
        self._seq = seq + 1
        words[base] = seq + 1

    def close(self) -> None:
        self._words.release()
        self._map.close()
