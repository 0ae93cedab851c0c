"""Elastic process contexts for the worker group: forked by the fork server, or started as processes.

Both share one exit policy and one way to end the group. Exit 0 and exit 75 (stopped on request,
checkpoint saved) both mean "done"; any other exit is a failure reported at once. Ending the group
sends SIGTERM to each worker's pid only (as torchrun does: the worker decides how to stop its
data-loader processes, which must outlive the signal long enough for a stop checkpoint), waits a
bounded grace, then sends the kill signal to each worker's whole process group, grandchildren
included. Every worker runs in its own session with PR_SET_PDEATHSIG(SIGKILL), so a launcher
killed outright leaves no worker behind.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch.distributed.elastic.multiprocessing.api import PContext, RunProcsResult
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from ft import ExitCode, set_parent_death_signal
from launcher.compat import SessionSubprocessHandler
from launcher.workers.fork_server import ForkServer

log = logging.getLogger("launcher")
DONE_CODES = (ExitCode.FINISHED, ExitCode.STOPPED_ON_REQUEST)


@dataclass(frozen=True)
class EndPolicy:
    """How a worker group is ended after the first signal's grace has passed.

    ``watch`` (during a graceful stop) returns the local ranks found hung, already reported: they
    are killed at once and the others get ``hang_grace`` more seconds, not the whole stop timeout.
    """

    kill_signal: signal.Signals = signal.SIGKILL
    watch: Callable[[], list[int]] | None = None
    hang_grace: float = 1.0


class WorkerGroupContext(PContext):
    """Shared exit policy and group termination; subclasses start workers and report exit codes."""

    _policy = EndPolicy()
    _closed = False

    def close(self, death_sig: signal.Signals | None = None, timeout: float = 30) -> None:
        """End the group once; later calls (elastic's teardown after ours) do nothing."""
        if not self._closed:
            super().close(death_sig, timeout)
            self._closed = True

    def end(self, death_sig: signal.Signals, timeout: float, policy: EndPolicy | None = None) -> None:
        """End the group once: ``death_sig`` to each worker, then ``policy`` for the ones still running."""
        self._policy = policy or EndPolicy()
        self.close(death_sig, timeout)

    @abstractmethod
    def exit_codes(self) -> dict[int, int | None]:
        """Exit code per local rank, None while running (negative: ended by that signal)."""

    def _poll(self) -> RunProcsResult | None:
        codes = self.exit_codes()
        pids = self.pids()
        failures = {
            rank: ProcessFailure(local_rank=rank, pid=pids[rank], exitcode=code, error_file=self.error_files[rank])
            for rank, code in codes.items()
            if code is not None and code not in DONE_CODES
        }
        if failures:
            return RunProcsResult(failures=failures, stdouts=self.stdouts, stderrs=self.stderrs)
        if all(code is not None for code in codes.values()):
            return RunProcsResult(return_values=dict.fromkeys(codes), stdouts=self.stdouts, stderrs=self.stderrs)
        return None

    def exit_order(self) -> list[int]:
        """Local ranks in the order they exited, as far as known (the first is the likely cause)."""
        return [rank for rank, code in self.exit_codes().items() if code is not None]

    def running(self) -> dict[int, int]:
        codes = self.exit_codes()
        return {rank: pid for rank, pid in self.pids().items() if codes.get(rank) is None}

    def signal_workers(self, sig: signal.Signals, whole_group: bool, ranks: list[int] | None = None) -> None:
        """Send ``sig`` to each worker (``whole_group``: to its process group) that is still ours.

        A worker not yet reaped holds its pid, so the pid is ours. Once reaped, only its process
        group may still hold helpers (the kernel reuses no pid that a live group is named by); a
        pid that exists again then belongs to someone else and is left alone.
        """
        codes = self.exit_codes()
        for rank, pid in self.pids().items():
            if ranks is not None and rank not in ranks:
                continue
            if codes.get(rank) is not None and (not whole_group or os.path.exists(f"/proc/{pid}")):
                continue
            try:
                if whole_group:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError as exc:
                log.warning("cannot signal worker pid %d: %s", pid, exc)

    def _wait(self, timeout: float, watch: Callable[[], list[int]] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while self.running():
            now = time.monotonic()
            if now >= deadline:
                return False
            hung = watch() if watch is not None else []
            if hung:  # a hung rank never stops on its own: no point waiting out the whole timeout
                self.signal_workers(signal.SIGKILL, whole_group=True, ranks=hung)
                deadline = min(deadline, now + self._policy.hang_grace)
            time.sleep(0.005)
        return True

    def _end_running(self, death_sig: signal.Signals, timeout: float) -> None:
        self.signal_workers(death_sig, whole_group=False)
        kill_signal = self._policy.kill_signal
        if self._wait(timeout, self._policy.watch):
            return
        still = sorted(self.running().values())
        log.warning("worker pid(s) %s still running %.1f s after %s; sending %s",
                    still, timeout, death_sig.name, kill_signal.name)
        self.signal_workers(kill_signal, whole_group=True)
        if kill_signal != signal.SIGKILL and not self._wait(timeout):
            self.signal_workers(signal.SIGKILL, whole_group=True)
        if not self._wait(10.0):
            log.error("worker pid(s) %s did not exit after SIGKILL (uninterruptible sleep?)",
                      sorted(self.running().values()))

    def _close(self, death_sig: signal.Signals, timeout: float = 30) -> None:
        if self.running():
            self._end_running(death_sig, timeout)
        # Children of a worker (data loaders) may outlive it in its process group: end them too.
        self.signal_workers(signal.SIGKILL, whole_group=True)
        self._release()

    def _release(self) -> None:
        """Free what the workers held once they are gone (files, bookkeeping)."""


class ForkedContext(WorkerGroupContext):
    """Workers forked by the fork server from a process that has already imported torch."""

    def __init__(self, *args: Any, fork_server: ForkServer, command: tuple[bool, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server = fork_server
        self._module, self._target = command
        self._pids: dict[int, int] = {}

    def _start(self) -> None:
        requests = []
        for rank in range(self.nprocs):
            requests.append({
                "argv": [self._target, *self._script_args(self.args[rank])],
                "module": self._module,
                "env": {**os.environ, **self.envs[rank]},
                "cwd": os.getcwd(),
                "stdout": self.stdouts[rank] or None,
                "stderr": self.stderrs[rank] or None,
            })
        self._pids = dict(enumerate(self._server.spawn(requests)))

    def _script_args(self, args: tuple) -> list[str]:
        # Elastic's arguments are python's: ("-u", ["-m",] target, *script args); the fork already is python.
        rest = [str(a) for a in args]
        while rest and rest[0] in ("-u", "-m"):
            rest.pop(0)
        if not rest or rest[0] != self._target:
            raise ValueError(f"unexpected worker arguments {args!r} for {self._target}")
        return rest[1:]

    def pids(self) -> dict[int, int]:
        return dict(self._pids)

    def exit_codes(self) -> dict[int, int | None]:
        return {rank: self._server.exit_code(pid) for rank, pid in self._pids.items()}

    def exit_order(self) -> list[int]:
        rank_of = {pid: rank for rank, pid in self._pids.items()}
        return [rank_of[pid] for pid in self._server.exit_order() if pid in rank_of]


class ProcessContext(WorkerGroupContext):
    """Workers started as fresh processes (``--no-fork-server``, ``--no-python``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handlers: dict[int, SessionSubprocessHandler] = {}

    def _start(self) -> None:
        for rank in range(self.nprocs):
            # set_parent_death_signal runs between fork and exec; it only calls prctl, which takes no locks.
            self._handlers[rank] = SessionSubprocessHandler(
                preexec=set_parent_death_signal, entrypoint=self.entrypoint, args=self.args[rank],
                env=self.envs[rank], stdout=self.stdouts[rank], stderr=self.stderrs[rank], local_rank_id=rank,
            )

    def pids(self) -> dict[int, int]:
        return {rank: handler.proc.pid for rank, handler in self._handlers.items()}

    def exit_codes(self) -> dict[int, int | None]:
        return {rank: handler.proc.poll() for rank, handler in self._handlers.items()}

    def _release(self) -> None:
        for handler in self._handlers.values():
            handler.close_log_files()
