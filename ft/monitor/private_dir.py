"""A fresh per-launch directory only this user can open, for the monitor's socket and shared memory.

Its name carries the launcher's pid, so a later launch can remove the directories of launchers that
were killed outright (SIGKILL, OOM) and never cleaned up after themselves.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from ft.shared.errors import RankMonitorError

log = logging.getLogger(__name__)
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere
SOCKET_NAME = "monitor.sock"
_PREFIX = "pulsetrain-ft-"
_OWNED = re.compile(rf"^{_PREFIX}(\d+)-")


def make_private_dir() -> Path:
    """mkdtemp (mode 0700), on tmpfs when there is one: no other user, job or stale socket gets in."""
    for base in ("/dev/shm", None, "/tmp"):
        if base is not None and not os.access(base, os.W_OK):
            continue
        remove_stale_dirs(Path(base or tempfile.gettempdir()))
        path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base))
        if len(os.fspath(path / SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return path
        path.rmdir()
    raise RankMonitorError("no temporary directory gives a short enough Unix socket path; set TMPDIR=/tmp")


def remove_stale_dirs(base: Path) -> list[Path]:
    """Remove this user's private directories in ``base`` whose launcher is gone; returns them.

    Gone means both: no process has the pid in the name, and nothing answers on the directory's
    socket. The second test keeps the directory of a live launcher in another pid namespace
    (a container sharing /dev/shm) whose pid merely looks unused from here.
    """
    removed = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _OWNED.match(path.name)
        if not match or int(match.group(1)) == os.getpid():
            continue
        try:
            if path.lstat().st_uid != os.getuid() or not path.is_dir() or path.is_symlink():
                continue
        except OSError:
            continue
        if _pid_exists(int(match.group(1))) or _socket_answers(path / SOCKET_NAME):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        log.info("removed %s, left by a launcher (pid %s) that is gone", path, match.group(1))
    return removed


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(os.fspath(path))
        except OSError:
            return False
    return True
