"""Heartbeat slots under a writer at full speed in another process: no read is ever half-written."""

from __future__ import annotations

import mmap
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ft.shared.heartbeat_slots import SLOT_BYTES, HeartbeatFile

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# The writer stores pairs whose time is a function of the counter, so any mix of two writes shows.
WRITER = """
import sys
from ft.shared.heartbeat_slots import HeartbeatWriter
writer = HeartbeatWriter(sys.argv[1], int(sys.argv[2]))
write = writer.write
print("ready", flush=True)
count = 0
while True:
    count += 1
    write(count, count * 7 + 3)
"""
READS = 300_000
OVERLAPS_NEEDED = 200  # reads that met a write in progress: proof the two really ran together
LIMIT_S = 60.0


def test_a_reader_never_sees_a_half_written_slot(tmp_path):
    heartbeats = HeartbeatFile(tmp_path / "heartbeats.bin", capacity=4)
    heartbeats.allocate()
    slot = heartbeats.allocate()  # not the first slot: offsets matter
    raw = open(heartbeats.path, "rb")  # noqa: SIM115
    words = memoryview(mmap.mmap(raw.fileno(), 0, prot=mmap.PROT_READ)).cast("Q")
    base = slot * SLOT_BYTES // 8
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(heartbeats.path), str(slot)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    reads = torn = overlaps = busy = 0
    last_count = 0
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + LIMIT_S
        while (reads < READS or overlaps < OVERLAPS_NEEDED) and time.monotonic() < deadline:
            overlaps += words[base] & 1  # the writer is between its first and last store
            sample = heartbeats.read(slot)
            reads += 1
            if sample is None:
                busy += 1
                continue
            count, beat_ns = sample
            if (count, beat_ns) != (0, 0) and (beat_ns != count * 7 + 3 or count < last_count):
                torn += 1
            last_count = max(last_count, count)
        assert writer.poll() is None, "the writer died"
    finally:
        writer.kill()
        writer.wait(10)
        writer.stdout.close()
        words.release()
        raw.close()
        heartbeats.close()
    assert overlaps >= OVERLAPS_NEEDED, f"reader and writer overlapped only {overlaps} times: nothing was proved"
    assert last_count > 1000, "the writer barely ran"
    assert torn == 0, f"{torn} of {reads} reads were inconsistent"
    # A read gives up (None: "mid-heartbeat, so alive") only when the writer was caught mid-write on
    # every retry, i.e. descheduled between its stores; on a loaded 2-core machine that is a few
    # percent of reads. Most reads must still complete, or the torn count above proved little.
    assert reads - busy >= READS // 2, f"only {reads - busy} of {reads} reads completed"


def test_time_zero_is_never_a_heartbeat(tmp_path):
    heartbeats = HeartbeatFile(tmp_path / "heartbeats.bin", capacity=2)
    slot = heartbeats.allocate()
    try:
        assert heartbeats.read(slot) == (0, 0)
        words = memoryview(heartbeats._map).cast("Q")
        words[slot * SLOT_BYTES // 8 + 1] = 5  # a counter without a time
        assert heartbeats.read(slot) == (0, 0)
        words.release()
    finally:
        heartbeats.close()
