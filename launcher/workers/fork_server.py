"""The launcher's side of the fork server: start the zygote, ask it for workers, learn their exit codes.

Why: a fresh worker spends seconds before its first step, most of it importing torch; a fork of a
process that already imported it does not. ``ft_launcher`` starts the zygote first thing, so its
imports overlap the launcher's, and every attempt (first launch and each restart) forks from it.
The zygote itself is ``launcher/workers/zygote.py`` (what it preloads). Requests
and reports are JSON lines on two pipes; nothing is unpickled. This module imports only the
standard library: the launcher imports it before anything heavy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from ft import set_parent_death_signal
from launcher.workers.zygote import LAUNCHER_GONE

__all__ = ["ForkServer", "ForkServerError"]


class ForkServerError(RuntimeError):
    """The fork server is gone or refused a request."""


class ForkServer:
    """Launcher side: starts the zygote, asks it for workers, learns their exit codes."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        req_r, self._req_w = os.pipe()
        self._rep_r, rep_w = os.pipe()
        # A parent-death signal from before exec: a launcher killed while the zygote still imports
        # torch (seconds) must not leave it behind. Started first thing, before the launcher has threads.
        launcher = os.getpid()

        def die_with_the_launcher() -> None:
            set_parent_death_signal(LAUNCHER_GONE)
            if os.getppid() != launcher:  # it died before the line above: no signal will come
                os._exit(1)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launcher.workers.zygote", str(req_r), str(rep_w)],
            pass_fds=(req_r, rep_w), env=env, preexec_fn=die_with_the_launcher,
        )
        os.close(req_r)
        os.close(rep_w)
        self._lock = threading.Condition()
        self._spawned: dict[int, int] = {}  # request id -> pid
        self._errors: dict[int, str] = {}
        self.exit_codes: dict[int, int] = {}  # pid -> exit code (negative: killed by that signal)
        self._next_id = 0
        self._alive = True
        threading.Thread(target=self._read_reports, name="fork-server-reports", daemon=True).start()

    def _read_reports(self) -> None:
        with os.fdopen(self._rep_r, "rb") as stream:
            for line in stream:
                report = json.loads(line)
                with self._lock:
                    if report["event"] == "spawned":
                        self._spawned[report["id"]] = report["pid"]
                        # A reused pid: the code of the earlier process with that pid is stale.
                        self.exit_codes.pop(report["pid"], None)
                    elif report["event"] == "error":
                        self._errors[report["id"]] = report["error"]
                    elif report["event"] == "exit":
                        self.exit_codes[report["pid"]] = report["code"]
                    self._lock.notify_all()
        with self._lock:
            self._alive = False
            self._lock.notify_all()

    def spawn(self, requests: list[dict], timeout: float = 300.0) -> list[int]:
        """Fork one worker per request (keys: argv, module, env, cwd, stdout, stderr); return their pids.

        Waits while the zygote is still importing (at most ``timeout`` seconds).
        """
        with self._lock:
            ids = list(range(self._next_id, self._next_id + len(requests)))
            self._next_id += len(requests)
        payload = b"".join(json.dumps({**req, "id": i}).encode() + b"\n" for i, req in zip(ids, requests, strict=True))
        try:
            os.write(self._req_w, payload)
        except OSError as exc:
            raise ForkServerError(f"the fork server is gone: {exc}") from None
        with self._lock:
            done = self._lock.wait_for(
                lambda: all(i in self._spawned or i in self._errors for i in ids) or not self._alive, timeout)
            failed = [self._errors[i] for i in ids if i in self._errors]
            if failed or not done or not all(i in self._spawned for i in ids):
                reason = failed[0] if failed else ("it exited" if not self._alive else f"no answer in {timeout:g} s")
                raise ForkServerError(f"the fork server could not start workers: {reason}")
            return [self._spawned.pop(i) for i in ids]

    def exit_code(self, pid: int) -> int | None:
        with self._lock:
            code = self.exit_codes.get(pid)
            if code is None and not self._alive and not os.path.exists(f"/proc/{pid}"):
                # The zygote died, and its workers with it (PDEATHSIG); nobody will report them.
                code = self.exit_codes[pid] = -signal.SIGKILL
            return code

    def exit_order(self) -> list[int]:
        """Pids in the order the zygote reaped them."""
        with self._lock:
            return list(self.exit_codes)

    def close(self, timeout: float = 5.0) -> None:
        """Closing the request pipe tells the zygote to kill what is left of its workers and exit."""
        try:
            os.close(self._req_w)
        except OSError:
            pass
        if self._next_id == 0:  # never asked for a worker (a usage error): no need to wait for its imports
            self.proc.kill()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
