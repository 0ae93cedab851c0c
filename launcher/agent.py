"""The elastic agent with hang detection: LocalElasticAgent plus the rank monitor's events.

Elastic keeps the rendezvous, the restart budget and the worker lifecycle. This subclass adds:
workers started by our process contexts (fork server or session processes) with the job's extra
environment; a hung or dropped rank (a ``RankEvent``) ends the group like a crash does; group
teardown with the configured grace and kill signal; exit 75 from workers means "stopped on
request", never a failure to restart; one log line per event, recorded for the summary.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch.distributed.elastic.agent.server.local_elastic_agent as elastic_local
from torch.distributed.elastic.agent.server.api import RunResult, WorkerGroup, WorkerState
from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent

from ft import exit_codes
from ft.config import FaultToleranceConfig
from launcher.attempt_id import ATTEMPT_ID_ENV, agree_attempt_id
from launcher.fork_server import ForkServer, ForkServerError
from launcher.pcontext import ForkedContext, ProcessContext, WorkerGroupContext
from launcher.report import JobRecord
from launcher.stacks import top_frames, waits_on_peers

log = logging.getLogger("launcher")
_FORWARDED = signal.SIGTERM  # SIGINT/SIGHUP/SIGQUIT to the launcher reach the workers as SIGTERM
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


@dataclass
class WorkerLaunch:
    """How one job's workers are started and watched."""

    command: tuple[bool, str]  # (run as module, script path or module name), for the fork server
    fork_server: ForkServer | None
    extra_env: dict[str, str]
    monitor: Any | None  # ft.monitor.RankMonitor, absent when fault_tolerance.enabled is false
    ft: FaultToleranceConfig
    record: JobRecord


class FaultTolerantAgent(LocalElasticAgent):
    """LocalElasticAgent that also restarts on hangs and tells people what happened."""

    def __init__(self, spec, logs_specs, launch: WorkerLaunch, term_timeout: float) -> None:
        super().__init__(spec, logs_specs, start_method="spawn", shutdown_timeout=int(term_timeout))
        self._launch = launch
        self._term_timeout = term_timeout
        self._attempts = 0
        self.stopped_on_request = False
        self.usage_error = False  # a worker exited 2: bad input that a restart cannot fix
        self.final_codes: dict[int, int | None] = {}  # workers running at a stop request -> exit codes
        self.killed_on_request: str | None = None  # the signal that asked to kill at once during a stop
        self._attempt_id = ""

    # ------------------------------------------------------------------ starting
    def _start_workers(self, worker_group: WorkerGroup) -> dict[int, Any]:
        if self._launch.monitor is not None and self._attempts > 0:
            self._launch.monitor.reset()  # between attempts only, so stack files count from attempt 0
        attempt = self._launch.record.begin(self._attempts, worker_group.workers[0].world_size)
        self._attempts += 1
        self._attempt_id = agree_attempt_id(worker_group, worker_group.spec.max_restarts - self._remaining_restarts)
        # Elastic builds every worker's environment, then calls start_processes(); we keep the
        # first and replace the second, so the workers get our process contexts.
        original = elastic_local.start_processes
        elastic_local.start_processes = self._start_processes
        try:
            pids = super()._start_workers(worker_group)
        finally:
            elastic_local.start_processes = original
        restart = worker_group.spec.max_restarts - self._remaining_restarts
        log.info("attempt %d started: world size %d, %d local workers (pids %s), restart %d of %d",
                 attempt.number, attempt.world_size, len(pids), " ".join(str(p) for p in pids.values()),
                 restart, worker_group.spec.max_restarts)
        return pids

    def _start_processes(self, name, entrypoint, args, envs, logs_specs, log_line_prefixes=None,
                         **_ignored) -> WorkerGroupContext:
        for env in envs.values():
            env.update(self._launch.extra_env)
            env[ATTEMPT_ID_ENV] = self._attempt_id
            if self._launch.monitor is not None:
                env.update(self._launch.monitor.worker_env())
        common = dict(name=name, entrypoint=entrypoint, args=args, envs=envs, logs_specs=logs_specs,
                      log_line_prefixes=log_line_prefixes)
        if self._launch.fork_server is not None:
            context = ForkedContext(**common, fork_server=self._launch.fork_server, command=self._launch.command)
            try:
                context.start()
                return context
            except ForkServerError as exc:
                log.warning("%s; starting workers as new processes from now on", exc)
                self._launch.fork_server = None
        context = ProcessContext(**common)
        context.start()
        return context

    # ------------------------------------------------------------------ watching
    def _monitor_workers(self, worker_group: WorkerGroup) -> RunResult:
        events = self._pending_events()
        if events:
            first = self._report(events)
            self._fail_attempt(f"{first.kind.replace('_', ' ')} on rank {first.rank}")
            return RunResult(state=WorkerState.UNHEALTHY)
        result = super()._monitor_workers(worker_group)
        if result.state == WorkerState.FAILED and result.failures:
            rank, first = self._first_failure(result)
            how = (f"was killed by {signal.Signals(-first.exitcode).name}" if first.exitcode < 0
                   else f"exited with code {first.exitcode}")
            self._fail_attempt(f"rank {rank} crashed ({'signal' if first.exitcode < 0 else 'exit'} "
                               f"{abs(first.exitcode)})")
            log.error("rank %d (local rank %d, pid %d) %s", rank, first.local_rank, first.pid, how)
            if first.exitcode == exit_codes.USAGE_ERROR:
                # train.py exits 2 for a config or checkpoint the user must fix: retrying only repeats it.
                self.usage_error, self._remaining_restarts = True, 0
                log.error("exit code %d means bad configuration or input (see the worker's message above): "
                          "not restarting", exit_codes.USAGE_ERROR)
        elif result.state == WorkerState.SUCCEEDED:
            codes = self._pcontext.exit_codes() if isinstance(self._pcontext, WorkerGroupContext) else {}
            self.stopped_on_request = any(code == exit_codes.STOPPED_ON_REQUEST for code in codes.values())
            self._end_attempt("stopped on request" if self.stopped_on_request else "finished", "ok")
        return result

    @staticmethod
    def _report(events: list) -> Any:
        """Log every event found in one check, stacks included; returns the likely culprit."""
        # The likely culprit first: a rank not waiting on its peers, with the longest silence.
        events.sort(key=lambda e: (waits_on_peers(e.stack_file), -e.gap))
        for event in events:
            log.error("%s", event.describe())
            for line in top_frames(event.stack_file):
                log.error("    %s", line)
        return events[0]

    def _first_failure(self, result: RunResult):
        by_local = {f.local_rank: (g, f) for g, f in result.failures.items()}
        order = self._pcontext.exit_order() if isinstance(self._pcontext, WorkerGroupContext) else []
        for local in order:
            if local in by_local:
                return by_local[local]
        first = min(result.failures.values(), key=lambda f: f.timestamp)
        return by_local[first.local_rank]

    def _pending_events(self) -> list:
        monitor = self._launch.monitor
        if monitor is None or not isinstance(self._pcontext, WorkerGroupContext):
            return []
        events = []
        while True:
            try:
                event = monitor.events.get_nowait()
            except queue.Empty:
                return events
            if event.pid not in self._pcontext.pids().values():
                continue  # from an attempt that is already over
            if event.kind == "disconnected" and not self._still_running_after(event.pid, 1.0):
                continue  # the rank exited: its exit code tells whether it finished or crashed
            events.append(event)

    def _still_running_after(self, pid: int, wait: float) -> bool:
        rank = next(r for r, p in self._pcontext.pids().items() if p == pid)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._pcontext.exit_codes().get(rank) is not None:
                return False
            time.sleep(0.01)
        return True

    def _fail_attempt(self, cause: str) -> None:
        self._end_attempt(cause, "failed")

    def _end_attempt(self, cause: str, outcome: str) -> None:
        attempt = self._launch.record.current
        if attempt is not None and attempt.outcome == "running":
            attempt.cause, attempt.outcome, attempt.ended = cause, outcome, time.monotonic()

    # ------------------------------------------------------------------ stopping
    def _restart_workers(self, worker_group: WorkerGroup) -> None:
        spec = worker_group.spec
        if worker_group.state == WorkerState.HEALTHY:
            self._fail_attempt("another node left or joined; restarting with it")
            log.warning("another node is waiting at the rendezvous: restarting this node's workers with it")
        else:
            log.warning("restarting the worker group (restart %d of %d)",
                        spec.max_restarts - self._remaining_restarts, spec.max_restarts)
        super()._restart_workers(worker_group)

    def _stop_workers(self, worker_group: WorkerGroup) -> None:
        if not isinstance(self._pcontext, WorkerGroupContext):
            return super()._stop_workers(worker_group)
        began = time.monotonic()
        running = len(self._pcontext.running())
        self._pcontext.kill_signal = self._launch.ft.termination_signal
        self._pcontext.close(signal.SIGTERM, self._launch.ft.rank_termination_grace)
        if running:
            log.info("worker group ended in %.2f s (%d still running got SIGTERM, then %s after %g s)",
                     time.monotonic() - began, running, self._launch.ft.rank_termination_signal,
                     self._launch.ft.rank_termination_grace)

    def _on_second_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.killed_on_request is None:
            log.warning("%s during the graceful stop: killing the workers now (the checkpoints already "
                        "saved stand; relaunch to resume)", name)
        self.killed_on_request = name
        if isinstance(self._pcontext, WorkerGroupContext):
            self._pcontext.signal_workers(signal.SIGKILL, whole_group=True)

    def _hung_during_stop(self) -> list[int]:
        """Local ranks the monitor found silent while the group stops: reported now, to be killed now."""
        events = self._pending_events()
        if not events:
            return []
        self._report(events)
        log.error("a rank hung during the graceful stop cannot stop: killing it now; the others get %g s",
                  self._launch.ft.rank_termination_grace)
        rank_of = {pid: rank for rank, pid in self._pcontext.pids().items()}
        return [rank_of[e.pid] for e in events if e.pid in rank_of]

    def _shutdown(self, death_sig: signal.Signals = signal.SIGTERM, timeout: int = 30) -> None:
        if not isinstance(self._pcontext, WorkerGroupContext):
            return super()._shutdown(death_sig, timeout)
        # A second signal of any kind while waiting means "now": kill instead of waiting out the
        # grace. Installed before anything else, so even a quick double press is caught.
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self._on_second_signal) for sig in _STOP_SIGNALS}
        try:
            running = self._pcontext.running()
            if running:
                log.warning("forwarding SIGTERM to %d worker(s); waiting up to %g s for them to stop "
                            "(press Ctrl-C again to kill them now)", len(running), self._term_timeout)
            self._pcontext.kill_signal = signal.SIGKILL
            # The monitor keeps watching: a rank that hangs now (or already had) is found within its
            # timeout and killed, instead of holding the stop for the whole --term-timeout.
            self._pcontext.watch = self._hung_during_stop
            self._pcontext.hang_grace = self._launch.ft.rank_termination_grace
            super()._shutdown(_FORWARDED, self._term_timeout)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        # Only the workers that were running when asked to stop tell how the stop went; an
        # attempt that had already failed (a signal between attempts) is not their doing.
        codes = self._pcontext.exit_codes()
        self.final_codes = {rank: codes[rank] for rank in running}
