"""One job per run directory: a lock that a second job is refused by, that a job's nodes share, that a dead job's is taken over.

The lock is a folder ``ft_launcher.lock/`` in the run directory with one JSON file per holding
launcher (host, pid, the process's start time, the job's id, since when, last refreshed). A launcher
may join when every live holder belongs to its own job: the nodes of one multi-node job share the
rendezvous id. A holder is dead when, on this host, its pid is gone (or now names another process),
or, on another host, it has not refreshed its file for ``STALE_AFTER`` seconds; each holder
refreshes its own every ``REFRESH_EVERY`` seconds. The check and the join happen under ``flock`` on
a file in that folder, so two launchers starting at once cannot both get in.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ft import write_json_atomic

log = logging.getLogger("launcher")
LOCK_DIR = "ft_launcher.lock"
REFRESH_EVERY = 10.0
STALE_AFTER = 60.0


class RunDirBusy(Exception):
    """The run directory is held by a live job that is not this one (exit 2, nothing started)."""


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc), None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _alive(holder: dict, host: str, now: float) -> bool:
    if holder.get("host") == host:
        started = process_start_time(int(holder.get("pid", 0)))
        return started is not None and started == holder.get("pid_started", started)
    return now - float(holder.get("refreshed_at", 0)) < STALE_AFTER


def _describe(holder: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("since", 0))))
    return f"host {holder.get('host')}, pid {holder.get('pid')}, since {since}"


class RunDirLock:
    """This launcher's hold on its run directory; ``release`` (or the process's end) lets it go."""

    def __init__(self, run_dir: Path, job_id: str | None) -> None:
        self.folder = run_dir / LOCK_DIR
        self.host = socket.gethostname()
        # Only a multi-node job's id makes launchers one job; any other launch is a job of its own.
        self.job_id = job_id or f"{self.host}:{os.getpid()}:{time.time()}"
        self.path = self.folder / f"{self.host}.{os.getpid()}.json"
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "mutex", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def acquire(self) -> None:
        """Join or take the lock, or raise RunDirBusy naming the live holder."""
        with self._mutex():
            now = time.time()
            for path in sorted(self.folder.glob("*.json")):
                try:
                    holder = json.loads(path.read_text())
                except (OSError, ValueError):
                    holder = {}
                if holder and _alive(holder, self.host, now):
                    if holder.get("job_id") != self.job_id:
                        raise RunDirBusy(f"{self.folder.parent} is in use by another job ({_describe(holder)}); "
                                         "wait for it to end, stop it, or choose another hydra.run.dir")
                    continue
                log.warning("run directory lock of a job that is gone (%s): taken over",
                            _describe(holder) if holder else f"unreadable {path.name}")
                path.unlink(missing_ok=True)
            since = time.time()
            self._holder = {"host": self.host, "pid": os.getpid(), "pid_started": process_start_time(os.getpid()),
                            "job_id": self.job_id, "since": since, "refreshed_at": since}
            self._write()
        self._refresher = threading.Thread(target=self._refresh, name="ft-run-dir-lock", daemon=True)
        self._refresher.start()

    def _write(self) -> None:
        write_json_atomic(self.path, self._holder)

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_EVERY):
            self._holder["refreshed_at"] = time.time()
            try:
                self._write()
            except OSError as exc:  # a full or vanished disk: other hosts may take the lock over later
                log.warning("could not refresh the run directory lock %s: %s", self.path, exc)

    def release(self) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(5)
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
