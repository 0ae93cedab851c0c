"""Stack excerpts, the summary's time lost, and the fork server's exit-code reporting."""

from __future__ import annotations

import os
import sys
import time

from launcher.job.record import JobRecord
from launcher.records.stacks import top_frames, waits_on_peers
from launcher.workers.fork_server import ForkServer

DUMP = """Thread 0x00007f01 (most recent call first):
  File "/x/threading.py", line 320 in wait

Current thread 0x00007f00 (most recent call first):
  File "/x/torch/distributed/distributed_c10d.py", line 3252 in all_reduce
  File "/x/train/loop.py", line 10 in step
  File "/x/train.py", line 3 in <module>
"""


def test_top_frames_take_the_latest_dump_of_the_current_thread(tmp_path):
    path = tmp_path / "stacks.txt"
    path.write_text(DUMP.replace("loop.py", "old.py") + DUMP)
    frames = top_frames(path, limit=2)
    assert frames[1:] == ['File "/x/torch/distributed/distributed_c10d.py", line 3252 in all_reduce',
                          'File "/x/train/loop.py", line 10 in step']
    assert waits_on_peers(path)
    assert top_frames(None) == [] and top_frames(tmp_path / "missing") == []


def test_time_lost_counts_the_failed_attempts():
    record = JobRecord("job")
    first = record.begin(0, 2)
    second = record.begin(1, 2)
    first.started, second.started = 10.0, 14.5
    assert record.time_lost() == 4.5


def test_fork_server_forks_workers_and_reports_exit_codes(tmp_path):
    script = tmp_path / "w.py"
    script.write_text("import os, sys\nopen(sys.argv[2], 'w').write(os.environ['X'])\nsys.exit(int(sys.argv[1]))\n")
    server = ForkServer(env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        requests = [{"argv": [str(script), str(code), str(tmp_path / f"o{code}")], "env": {**os.environ, "X": "x"},
                     "cwd": str(tmp_path)} for code in (0, 3)]
        pids = server.spawn(requests, timeout=60)
        deadline = time.monotonic() + 30
        while any(server.exit_code(pid) is None for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [server.exit_code(pid) for pid in pids] == [0, 3]
        assert (tmp_path / "o3").read_text() == "x"
    finally:
        server.close()
    assert server.proc.returncode is not None


def test_time_lost_counts_only_the_restart_after_an_attempt_that_saved_before_it_was_ended():
    record = JobRecord("job")
    saved, crashed, last = record.begin(0, 2), record.begin(1, 2), record.begin(2, 4)
    saved.started, saved.ended, saved.saved = 0.0, 100.0, True  # resized: its workers saved and exited 75
    crashed.started, crashed.ended = 101.5, 110.0
    last.started = 112.0
    assert record.time_lost() == (101.5 - 100.0) + (112.0 - 101.5)
