"""Shared-memory heartbeat slots: each rank stores (counter, monotonic ns); the monitor reads them.

A heartbeat is a clock read and a 16-byte store into a file mapped by both processes, so it never
waits on the monitor. Slots are 64 bytes apart (one cache line each) and never reused within a
file, so a rank left over from an earlier attempt cannot write into a new rank's slot.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

from ft.errors import RankMonitorError

SLOT_BYTES = 64
SLOT_CAPACITY = 4096
_SLOT = struct.Struct("=qq")  # heartbeat counter, time.monotonic_ns() of the latest heartbeat


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
        _SLOT.pack_into(self._map, slot * SLOT_BYTES, 0, 0)
        return slot

    def read(self, slot: int) -> tuple[int, int]:
        """(counter, monotonic ns of the latest heartbeat); counter 0 means none yet."""
        return _SLOT.unpack_from(self._map, slot * SLOT_BYTES)

    def close(self, unlink: bool = True) -> None:
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
        self._offset = slot * SLOT_BYTES
        # Bound once: the heartbeat path is a single call with no attribute lookups on the struct.
        self._pack_into = _SLOT.pack_into

    def write(self, counter: int, now_ns: int) -> None:
        self._pack_into(self._map, self._offset, counter, now_ns)

    def close(self) -> None:
        self._map.close()
