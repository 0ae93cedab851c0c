"""Storage health checks: a directory exists or can be made, takes a real write, and has room for what comes next."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from launcher.health.problems import CheckFailed

log = logging.getLogger("launcher")
# Room asked for beyond the newest checkpoint's size: the next one may grow a little (optimizer state, metadata).
CHECKPOINT_MARGIN = 1.5


def free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def _size(amount: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def check_writable(check: str, directory: Path) -> None:
    """``directory`` exists (or is made) and a probe file can be written, flushed and removed in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckFailed(check, f"{directory} cannot be created ({exc.strerror or exc})",
                          "make it (or its parent) writable for this user, or run on a node where it is") from None
    probe = directory / f".health-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"pulsetrain health probe\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise CheckFailed(check, f"{directory} is not writable ({exc.strerror or exc})",
                          "remount it read-write or fix its permissions, or run on another node") from None


def newest_checkpoint_bytes(directory: Path) -> int:
    """The size of the newest file in ``directory`` (0 when none; hidden and temporary files are not checkpoints)."""
    newest: tuple[float, int] | None = None
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith(".") or ".tmp" in entry.name:
            continue
        try:
            if not entry.is_file(follow_symlinks=True):
                continue
            stat = entry.stat()
        except OSError:
            continue
        if newest is None or stat.st_mtime > newest[0]:
            newest = (stat.st_mtime, stat.st_size)
    return newest[1] if newest else 0


def check_checkpoint_room(check: str, directory: Path) -> None:
    """Free space for one more checkpoint: the newest one's size times ``CHECKPOINT_MARGIN`` (none yet: no need)."""
    last = newest_checkpoint_bytes(directory)
    if last == 0:
        log.debug("health: no checkpoint in %s yet, no room to check", directory)
        return
    needed, free = int(last * CHECKPOINT_MARGIN), free_bytes(directory)
    if free < needed:
        raise CheckFailed(check, f"{directory} has {_size(free)} free, the next checkpoint needs about "
                                 f"{_size(needed)} (the newest is {_size(last)}, times {CHECKPOINT_MARGIN:g})",
                          "free space there (fewer checkpoint.keep_last, old runs), or run on another node")


def check_shm_room(needed: int, shm: Path = Path("/dev/shm")) -> None:
    """``/dev/shm`` (where the monitor keeps the heartbeat file) has room for it, when it is there to use."""
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        log.debug("health: %s is not writable here; the monitor uses a temp dir instead", shm)
        return
    free = free_bytes(shm)
    if free < needed:
        raise CheckFailed("shared memory", f"{shm} has {_size(free)} free, the heartbeat file needs {_size(needed)}",
                          f"free {shm} (stale files of earlier jobs) or run on another node")
