"""The fork server ("zygote"): one process that imports torch once and forks ready workers on request.

Why: a fresh worker spends seconds before its first step, most of it importing torch; a fork of a
process that already imported it does not. ``ft_launcher`` starts the zygote first thing, so its
imports overlap the launcher's, and every attempt (first launch and each restart) forks from it.
torch._dynamo is deliberately left to the workers (see PRELOAD).

The zygote only imports: it creates no threads, initialises no OpenMP pool and never touches CUDA,
so forking it is safe. It is single-threaded; it reaps its children (it is their parent) and
reports ``(pid, exit code)`` to the launcher. Requests and reports are JSON lines on two pipes.
When the launcher goes away (its end of the request pipe closes, even after SIGKILL), the zygote
kills every worker's process group and exits. Workers also get PR_SET_PDEATHSIG(SIGKILL).

This module imports only the standard library at module level: the launcher imports it before
anything heavy. ``serve()`` runs in the zygote (``python -m launcher.fork_server R W``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

# What the zygote imports. Not torch._dynamo, nor its heavy dependencies (sympy, symbolic shapes,
# FSDP, torch._inductor, aot_autograd): with those imported before the worker creates its gloo
# process group, torch 2.13 deadlocks now and then when the group is destroyed at the end (the main
# thread joins gloo's run loop while holding the GIL; the run loop needs the GIL to free a work item
# that captured the Python context backward() stashes in thread-local storage; see pytorch PRs
# #173568 and #182083). Measured here with a 2-rank DDP job: a stuck worker in 1 of 2 to 9 launches
# with them preloaded (a barrier before the teardown did not help; plain `python` workers that import
# torch._dynamo first hang too); none in 40 launches (80 worker groups) with this list, where DDP
# imports dynamo itself (about 1 s per attempt).
PRELOAD = ("torch", "torch.distributed", "torch.nn.parallel", "hydra", "omegaconf", "rich", "rich.logging",
           "rich.progress", "yaml")


class ForkServerError(RuntimeError):
    """The fork server is gone or refused a request."""


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux; no-op elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ForkServer:
    """Launcher side: starts the zygote, asks it for workers, learns their exit codes."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        req_r, self._req_w = os.pipe()
        self._rep_r, rep_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launcher.fork_server", str(req_r), str(rep_w)],
            pass_fds=(req_r, rep_w), env=env,
        )
        os.close(req_r)
        os.close(rep_w)
        self._lock = threading.Condition()
        self._spawned: dict[int, int] = {}  # request id -> pid
        self._errors: dict[int, str] = {}
        self.exit_codes: dict[int, int] = {}  # pid -> exit code (negative: killed by that signal)
        self._next_id = 0
        self._alive = True
        self.on_exit: Callable[[int, int], None] | None = None
        threading.Thread(target=self._read_reports, name="fork-server-reports", daemon=True).start()

    def _read_reports(self) -> None:
        with os.fdopen(self._rep_r, "rb") as stream:
            for line in stream:
                report = json.loads(line)
                with self._lock:
                    if report["event"] == "spawned":
                        self._spawned[report["id"]] = report["pid"]
                    elif report["event"] == "error":
                        self._errors[report["id"]] = report["error"]
                    elif report["event"] == "exit":
                        self.exit_codes[report["pid"]] = report["code"]
                    self._lock.notify_all()
                if report["event"] == "exit" and self.on_exit is not None:
                    self.on_exit(report["pid"], report["code"])
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

    @property
    def alive(self) -> bool:
        return self._alive and self.proc.poll() is None

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


# ---------------------------------------------------------------------------- zygote side
def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def serve(req_fd: int, rep_fd: int) -> None:
    # Interrupts meant for the job go to the launcher, which decides; the zygote lives until the
    # launcher closes the request pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # ``python -m`` put the launcher's cwd first on sys.path; ``python script.py`` would not have it.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        sys.path.pop(0)
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # Keep what was imported out of the cyclic GC: a collection in a worker would otherwise walk
    # (and so copy-on-write) every object the zygote created, which costs a restart ~0.3 s.
    import gc

    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    buffer = b""

    def report(message: dict) -> None:
        os.write(rep_fd, json.dumps(message).encode() + b"\n")

    while True:
        try:
            ready, _, _ = select.select([req_fd, wake_r], [], [])
        except InterruptedError:
            ready = [wake_r]
        if wake_r in ready:
            os.read(wake_r, 4096)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            report({"event": "exit", "pid": pid, "code": _exit_code(status)})
        if req_fd in ready:
            chunk = os.read(req_fd, 1 << 20)
            if not chunk:  # the launcher is gone or done: nothing of ours may outlive it
                for pid in children:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                os._exit(0)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as exc:
                    report({"event": "error", "id": request["id"], "error": str(exc)})
                    continue
                if pid == 0:
                    _become_worker(request, (req_fd, rep_fd, wake_r, wake_w))
                children.add(pid)
                report({"event": "spawned", "id": request["id"], "pid": pid})


def _become_worker(request: dict, inherited_fds: tuple[int, ...]) -> None:
    """In the forked child: detach, take the worker's environment and run its script; never returns."""
    code = 1
    try:
        os.setsid()  # own process group: the launcher ends the worker with its children (data loaders)
        parent = os.getppid()
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
        signal.set_wakeup_fd(-1)
        for fd in inherited_fds:
            os.close(fd)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from launcher.worker_main import run_worker

        code = run_worker(request)
    finally:
        os._exit(code)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
