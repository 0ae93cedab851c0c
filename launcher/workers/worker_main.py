"""Inside a worker forked by the fork server: become ``python [-m] script args`` with the worker's environment."""

from __future__ import annotations

import faulthandler
import json
import os
import runpy
import sys
import time
import traceback
from typing import IO

from ft.monitor.stacks import STACK_SIGNAL
from ft.shared.contracts import STACK_FILE_ENV
from launcher.workers.group_lifetime import keep_groups_until_exit

_early_stack_file: IO[str] | None = None


def _redirect(path: str | None, fd: int) -> None:
    if path:
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    sys.stderr.write(f"{exc.code}\n")  # what python itself does for sys.exit("message")
    return 1


def run_worker(request: dict) -> int:
    """Run the script described by ``request``; return the process exit code (as ``python`` would)."""
    _redirect(request.get("stdout"), 1)
    _redirect(request.get("stderr"), 2)
    # Like ``python -u`` (what torchrun uses): output reaches logs and consoles line by line.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True, write_through=True)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    _dump_stacks_on_request()
    _apply_thread_limits()
    keep_groups_until_exit()  # this process ends with os._exit: no group teardown, so no teardown deadlock
    argv = list(request["argv"])
    code = 0
    try:
        if request.get("module"):
            sys.argv = [argv[0], *argv[1:]]
            sys.path[0:0] = [request["cwd"]]
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        else:
            script = os.path.abspath(argv[0])
            sys.argv = [script, *argv[1:]]
            sys.path[0:0] = [os.path.dirname(script)]
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = _exit_status(exc)
    except BaseException as exc:  # what the interpreter would print for an uncaught exception
        _print_uncaught(exc)
        _record_uncaught(exc)
        code = 1
    _finish()
    return code


def _print_uncaught(exc: BaseException) -> None:
    """Print the traceback from the script's first frame on, as ``python script.py`` would."""
    tb = exc.__traceback__
    while tb is not None and (tb.tb_frame.f_code.co_filename in (__file__, "<frozen runpy>")
                              or tb.tb_frame.f_code.co_filename.endswith("runpy.py")):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)


def _record_uncaught(exc: BaseException) -> None:
    """Write elastic's error file (as ``@record`` would), so the launcher can tell one failure from another."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE", "")
    if not path or path == os.devnull or os.path.exists(path):  # none wanted, or the script's own @record wrote it
        return
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    data = {"message": {"message": f"{type(exc).__name__}: {exc}",
                        "extraInfo": {"py_callstack": stack, "timestamp": str(int(time.time()))}}}
    try:
        with open(path, "w") as f:
            json.dump(data, f)
    except OSError:
        pass  # the failure is still reported by its exit code


def _dump_stacks_on_request() -> None:
    """Register faulthandler on SIGUSR2 now, so a worker stuck before it connects to the monitor shows its stacks.

    The client registers the same file again at init; until then this handler answers the monitor.
    """
    path = os.environ.get(STACK_FILE_ENV)
    if path:
        global _early_stack_file
        try:
            _early_stack_file = open(path, "w")  # noqa: SIM115 (kept open for faulthandler)
        except OSError:
            return  # no stacks for this worker; the monitor says so when it reports it
        faulthandler.register(STACK_SIGNAL, file=_early_stack_file, all_threads=True, chain=False)


def _apply_thread_limits() -> None:
    # The zygote imported torch before this worker's OMP_NUM_THREADS existed; apply it now.
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))


def _finish() -> None:
    """What interpreter shutdown does for a script: wait for its threads, run atexit, flush."""
    import atexit
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except Exception:
        pass
    try:
        atexit._run_exitfuncs()
    except Exception:
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
