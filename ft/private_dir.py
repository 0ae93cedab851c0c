"""A fresh per-launch directory only this user can open, for the monitor's socket and shared memory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ft.errors import RankMonitorError

_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere
SOCKET_NAME = "monitor.sock"


def make_private_dir() -> Path:
    """mkdtemp (mode 0700), on tmpfs when there is one: no other user, job or stale socket gets in."""
    for base in ("/dev/shm", None, "/tmp"):
        if base is not None and not os.access(base, os.W_OK):
            continue
        path = Path(tempfile.mkdtemp(prefix="pulsetrain-ft-", dir=base))
        if len(os.fspath(path / SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return path
        path.rmdir()
    raise RankMonitorError("no temporary directory gives a short enough Unix socket path; set TMPDIR=/tmp")
