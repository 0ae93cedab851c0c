"""The fork server ("zygote") process: imports torch once, then forks ready workers on request.

Runs as ``python -m launcher.workers.zygote REQUEST_FD REPORT_FD``, started by ``launcher.workers.fork_server``. It
only imports: it creates no threads, initialises no OpenMP pool and never touches CUDA, so forking
it is safe. It is single-threaded; it reaps its children (it is their parent) and reports
``(pid, exit code)`` as JSON lines. When the launcher goes away (its end of the request pipe closes,
or, even while the zygote is still importing, its parent-death signal arrives), it kills every
worker's process group and exits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys

from ft import set_parent_death_signal, stop_signals_from_env

# The zygote's parent-death signal (fork_server sets it before exec). A real-time signal: SIGUSR1 and
# the like are what schedulers send to every process of a job as a stop warning (--stop-signal).
LAUNCHER_GONE = signal.SIGRTMIN + 2
# What the zygote imports. torch._dynamo too: the first DistributedDataParallel(...) imports it, about
# 1.4 s here and several seconds on a CUDA build. Imported this early it made gloo teardown deadlock
# now and then; forked workers never tear their groups down (launcher.workers.group_lifetime explains why).
PRELOAD = ("torch", "torch.distributed", "torch.nn.parallel", "torch._dynamo", "hydra", "omegaconf", "rich",
           "rich.logging", "rich.progress", "yaml")


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _end_all(children: set[int]) -> None:
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)


def serve(req_fd: int, rep_fd: int) -> None:
    # Interrupts meant for the job go to the launcher, which decides; the zygote lives until the
    # launcher closes the request pipe, or dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The launcher's other stop signals too (a scheduler may send SIGUSR1 to every process of the
    # job). Forked workers inherit this until their loop installs its stop handler.
    for sig in stop_signals_from_env():
        signal.signal(sig, signal.SIG_IGN)
    children: set[int] = set()
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
    # Until now the parent-death signal's default action ended the zygote at once (it had no
    # workers yet); from now on the launcher's death also ends the workers' process groups.
    signal.signal(LAUNCHER_GONE, lambda *_: _end_all(children))
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
                _end_all(children)
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
        for sig in (signal.SIGCHLD, signal.SIGTERM, LAUNCHER_GONE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from launcher.workers.worker_main import run_worker

        code = run_worker(request)
    finally:
        os._exit(code)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
