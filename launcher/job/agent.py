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

from torch.distributed.elastic.agent.server.api import RunResult, WorkerGroup, WorkerState

from ft import ExitCode
from ft.monitor.rank_watch import ExpectedWorker
from ft.shared.config import FaultToleranceConfig
from ft.shared.contracts import ATTEMPT_ID_ENV, STACK_FILE_ENV
from launcher.cli.stop_signals import handled as handled_stop_signals
from launcher.compat import CompatibleAgent
from launcher.job.attempt_id import agree_attempt_id
from launcher.job.exit_watch import ExitWatch
from launcher.job.outcome import Outcome
from launcher.job.record import JobRecord
from launcher.job.stop_outcome import StopResult
from launcher.job.worker_store import USE_AGENT_STORE_ENV, WorkerStore
from launcher.records.stacks import top_frames, waits_on_peers
from launcher.workers.fork_server import ForkServer, ForkServerError
from launcher.workers.pcontext import EndPolicy, ForkedContext, ProcessContext, WorkerGroupContext

log = logging.getLogger("launcher")
# A second SIGINT, SIGTERM, SIGHUP or SIGQUIT while the workers stop means "now"; a repeated
# scheduler warning (an extra --stop-signal such as SIGUSR1, sent to every process of a job) does not.
_KILL_NOW = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_FORWARDED = signal.SIGTERM  # every stop signal to the launcher (launcher/cli/stop_signals.py) reaches the workers as SIGTERM
NO_EARLY_STACKS = ("started as a new process (--no-fork-server or --no-python), it has no SIGUSR2 stack dump "
                   "until init_workload_monitoring(), and SIGUSR2 would kill it")


@dataclass
class WorkerLaunch:
    """How one job's workers are started and watched."""

    command: tuple[bool, str]  # (run as module, script path or module name), for the fork server
    fork_server: ForkServer | None
    extra_env: dict[str, str]
    monitor: Any | None  # ft.monitor.RankMonitor, absent when fault_tolerance.enabled is false
    ft: FaultToleranceConfig
    record: JobRecord
    worker_store: WorkerStore | None = None  # one-node jobs: the launcher hosts the workers' store


class FaultTolerantAgent(CompatibleAgent):
    """LocalElasticAgent that also restarts on hangs and tells people what happened."""

    def __init__(self, spec, logs_specs, launch: WorkerLaunch, term_timeout: float) -> None:
        super().__init__(spec, logs_specs, shutdown_timeout=term_timeout)
        self._launch = launch
        sources = launch.monitor.sources if launch.monitor is not None else {}
        self._exit_watch = ExitWatch(launch.ft.rank_exit_timeout, sources.get("rank_exit_timeout", "config"))
        self._term_timeout = term_timeout
        self._attempts = 0
        # How the workers ended as this agent saw them: FINISHED or STOPPED (they exited 0 or 75),
        # BAD_INPUT (one exited 2: a restart cannot fix it); RUNNING until then.
        self.outcome = Outcome.RUNNING
        self.stop = StopResult()  # filled when a stop signal to the launcher ends the workers
        self._attempt_id = ""

    # ------------------------------------------------------------------ starting
    def _start_workers(self, worker_group: WorkerGroup) -> dict[int, Any]:
        if self._launch.monitor is not None and self._attempts > 0:
            self._launch.monitor.reset()  # between attempts only, so stack files count from attempt 0
        self._exit_watch.reset()
        attempt = self._launch.record.begin(self._attempts, worker_group.workers[0].world_size)
        self._attempts += 1
        self._attempt_id = agree_attempt_id(worker_group, worker_group.spec.max_restarts - self.restarts_left)
        # Elastic builds every worker's environment, then calls start_processes(); we keep the
        # first and replace the second, so the workers get our process contexts.
        with self.processes_started_by(self._start_processes):
            pids = super()._start_workers(worker_group)
        self._expect_connections(worker_group, pids)
        restart = worker_group.spec.max_restarts - self.restarts_left
        log.info("attempt %d started: world size %d, %d local workers (pids %s), restart %d of %d",
                 attempt.number, attempt.world_size, len(pids), " ".join(str(p) for p in pids.values()),
                 restart, worker_group.spec.max_restarts)
        return pids

    def _expect_connections(self, worker_group: WorkerGroup, pids: dict[int, int]) -> None:
        """Have the monitor watch every started worker until it connects (a hang before init is a hang too)."""
        monitor = self._launch.monitor
        if monitor is None:
            return
        forked = isinstance(self.worker_context, ForkedContext)
        started = time.monotonic_ns()
        monitor.expect_workers([
            ExpectedWorker(local_rank=w.local_rank, rank=w.global_rank, pid=pids[w.local_rank], start_ns=started,
                           stack_file=monitor.stack_file(w.global_rank) if forked else None,
                           no_stacks_reason=None if forked else NO_EARLY_STACKS)
            for w in worker_group.workers if w.local_rank in pids
        ])

    def _start_processes(self, name, entrypoint, args, envs, logs_specs, log_line_prefixes=None,
                         **_ignored) -> WorkerGroupContext:
        store = self._launch.worker_store
        hosted = store is not None and bool(envs) and store.open(int(next(iter(envs.values()))["MASTER_PORT"]))
        for env in envs.values():
            if hosted:
                env[USE_AGENT_STORE_ENV] = "True"
            env.update(self._launch.extra_env)
            env[ATTEMPT_ID_ENV] = self._attempt_id
            if self._launch.monitor is not None:
                env.update(self._launch.monitor.worker_env())
                env[STACK_FILE_ENV] = str(self._launch.monitor.stack_file(int(env["RANK"])))
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
        if self._launch.monitor is not None:
            self._launch.monitor.check_alive()  # raises: job.py ends the job (exit 1) with its message
        events = self._pending_events() + self._exit_timeouts()
        if events:
            first = self._report(events)
            self._fail_attempt(f"{first.kind.replace('_', ' ')} on rank {first.rank}")
            self._launch.record.note_detection(first)
            return RunResult(state=WorkerState.UNHEALTHY)
        result = super()._monitor_workers(worker_group)
        if result.state == WorkerState.FAILED and result.failures:
            rank, first = self._first_failure(result)
            how = (f"was killed by {signal.Signals(-first.exitcode).name}" if first.exitcode < 0
                   else f"exited with code {first.exitcode}")
            self._fail_attempt(f"rank {rank} crashed ({'signal' if first.exitcode < 0 else 'exit'} "
                               f"{abs(first.exitcode)})")
            log.error("rank %d (local rank %d, pid %d) %s", rank, first.local_rank, first.pid, how)
            if first.exitcode == ExitCode.USAGE_ERROR:
                # train.py exits 2 for a config or checkpoint the user must fix: retrying only repeats it.
                self.outcome, self.restarts_left = Outcome.BAD_INPUT, 0
                log.error("exit code %d means bad configuration or input (see the worker's message above): "
                          "not restarting", ExitCode.USAGE_ERROR)
        elif result.state == WorkerState.SUCCEEDED:
            codes = self.group.exit_codes() if self.group is not None else {}
            stopped = any(code == ExitCode.STOPPED_ON_REQUEST for code in codes.values())
            self.outcome = Outcome.STOPPED if stopped else Outcome.FINISHED
            self._end_attempt("stopped on request" if stopped else "finished", self.outcome)
        return result

    @property
    def group(self) -> WorkerGroupContext | None:
        """The worker group's process context: ours once workers started (_start_processes), else None."""
        context = self.worker_context
        return context if isinstance(context, WorkerGroupContext) else None

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
        order = self.group.exit_order() if self.group is not None else []
        for local in order:
            if local in by_local:
                return by_local[local]
        first = min(result.failures.values(), key=lambda f: f.timestamp)
        return by_local[first.local_rank]

    def _pending_events(self) -> list:
        monitor, group = self._launch.monitor, self.group
        if monitor is None or group is None:
            return []
        events = []
        while True:
            try:
                event = monitor.events.get_nowait()
            except queue.Empty:
                return events
            if event.pid not in group.pids().values():
                continue  # from an attempt that is already over
            if event.kind == "disconnected" and not self._still_running_after(event.pid, 1.0):
                continue  # the rank exited: its exit code tells whether it finished or crashed
            if event.kind == "not_connected" and not self._still_running_after(event.pid, 0.0):
                continue  # it exited before connecting: its exit code is what counts
            events.append(event)

    def _exit_timeouts(self) -> list:
        monitor, group = self._launch.monitor, self.group
        if monitor is None or group is None:
            return []
        return self._exit_watch.overdue(group.exit_codes(), monitor.shut_down_ranks())

    def _still_running_after(self, pid: int, wait: float) -> bool:
        rank = next(r for r, p in self.worker_context.pids().items() if p == pid)
        deadline = time.monotonic() + wait
        while True:
            if self.worker_context.exit_codes().get(rank) is not None:
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.01)

    def _fail_attempt(self, cause: str) -> None:
        self._end_attempt(cause, Outcome.FAILED)

    def _end_attempt(self, cause: str, outcome: Outcome) -> None:
        attempt = self._launch.record.current
        if attempt is not None and attempt.outcome is Outcome.RUNNING:
            attempt.cause, attempt.outcome, attempt.ended = cause, outcome, time.monotonic()

    # ------------------------------------------------------------------ stopping
    def _restart_workers(self, worker_group: WorkerGroup) -> None:
        spec = worker_group.spec
        if worker_group.state == WorkerState.HEALTHY:
            self._fail_attempt("another node left or joined; restarting with it")
            log.warning("another node is waiting at the rendezvous: restarting this node's workers with it")
        else:
            log.warning("restarting the worker group (restart %d of %d)",
                        spec.max_restarts - self.restarts_left, spec.max_restarts)
        super()._restart_workers(worker_group)

    def stop_workers(self, worker_group: WorkerGroup) -> None:
        group = self.group
        if group is None:
            return super().stop_workers(worker_group)
        began = time.monotonic()
        running = len(group.running())
        group.end(signal.SIGTERM, self._launch.ft.rank_termination_grace,
                  EndPolicy(kill_signal=self._launch.ft.termination_signal))
        if running:
            log.info("worker group ended in %.2f s (%d still running got SIGTERM, then %s after %g s)",
                     time.monotonic() - began, running, self._launch.ft.rank_termination_signal,
                     self._launch.ft.rank_termination_grace)

    def _on_second_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.stop.killed_by is None:
            log.warning("%s during the graceful stop: killing the workers now (the checkpoints already "
                        "saved stand; relaunch to resume)", name)
        self.stop.killed_by = name
        if self.group is not None:
            self.group.signal_workers(signal.SIGKILL, whole_group=True)

    def _on_repeat(self, signum: int, frame: object) -> None:
        log.warning("%s again: already stopping", signal.Signals(signum).name)

    def _hung_during_stop(self) -> list[int]:
        """Local ranks the monitor found silent while the group stops: reported now, to be killed now."""
        events = self._pending_events()
        if not events:
            return []
        self._report(events)
        log.error("a rank hung during the graceful stop cannot stop: killing it now; the others get %g s",
                  self._launch.ft.rank_termination_grace)
        rank_of = {pid: rank for rank, pid in self.worker_context.pids().items()}
        return [rank_of[e.pid] for e in events if e.pid in rank_of]

    def shutdown_workers(self, death_sig: signal.Signals, timeout: float | None) -> None:
        context = self.group
        if context is None:
            return self.elastic_shutdown(death_sig, timeout)
        # A second stop signal while waiting means "now": kill instead of waiting out the grace.
        # Installed before anything else, so even a quick double press is caught.
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self._on_second_signal if sig in _KILL_NOW else self._on_repeat)
                        for sig in {*_KILL_NOW, *handled_stop_signals()}}
        try:
            running = context.running()
            if running:
                log.warning("forwarding SIGTERM to %d worker(s); waiting up to %g s for them to stop "
                            "(press Ctrl-C again to kill them now)", len(running), self._term_timeout)
            # The monitor keeps watching: a rank that hangs now (or already had) is found within its
            # timeout and killed, instead of holding the stop for the whole --term-timeout.
            policy = EndPolicy(watch=self._hung_during_stop, hang_grace=self._launch.ft.rank_termination_grace)
            context.end(_FORWARDED, self._term_timeout, policy)  # our grace, whatever elastic's default
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.elastic_shutdown(_FORWARDED, self._term_timeout)  # the rest of elastic's teardown
        # Only the workers that were running when asked to stop tell how the stop went; an
        # attempt that had already failed (a signal between attempts) is not their doing.
        codes = context.exit_codes()
        self.stop.codes = {rank: codes[rank] for rank in running}
