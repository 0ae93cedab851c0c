"""The elastic agent with hang detection: LocalElasticAgent plus the rank monitor's events.

Elastic keeps the rendezvous, the restart budget and the worker lifecycle. This subclass adds:
workers started by our process contexts (fork server or session processes) with the job's extra
environment; a hung or dropped rank (a ``RankEvent``) ends the group like a crash does, blaming the
first party (``blame.py``), or a peer node that was lost (``peer_nodes.py``); exit 75 from workers means "stopped on request", never a failure to
restart, and exit 2 or 93 means a restart cannot help, as do the restart verdicts (``restart_verdicts.py``: no
progress, the same failure twice, a restart storm); one log line per event, recorded for the
summary. Group teardown and the graceful stop on request are ``stop_requests.py``'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from torch.distributed.elastic.agent.server.api import RunResult, WorkerGroup, WorkerState

from ft import ExitCode
from launcher.job import blame
from launcher.job.attempt_id import agree_attempt_id
from launcher.job.exit_watch import ExitWatch
from launcher.job.failure_signature import FailureSignature, of_failure
from launcher.job.outcome import Outcome
from launcher.job.peer_nodes import PeerNodes
from launcher.job.rank_events import RankEvents
from launcher.job.restart_verdicts import RestartVerdicts
from launcher.job.stop_outcome import StopResult
from launcher.job.stop_requests import REQUESTS, StoppingAgent
from launcher.job.worker_launch import WorkerLaunch, expect_connections, start_context
from launcher.workers.pcontext import ForkedContext, WorkerGroupContext

log = logging.getLogger("launcher")


class FaultTolerantAgent(StoppingAgent):
    """LocalElasticAgent that also restarts on hangs and tells people what happened."""

    def __init__(self, spec, logs_specs, launch: WorkerLaunch, term_timeout: float) -> None:
        super().__init__(spec, logs_specs, shutdown_timeout=term_timeout)
        self._launch = launch
        sources = launch.monitor.sources if launch.monitor is not None else {}
        exit_watch = ExitWatch(launch.ft.rank_exit_timeout, sources.get("rank_exit_timeout", "config"))
        self._events = RankEvents(launch.monitor, lambda: self.group, exit_watch)
        self._term_timeout = term_timeout
        self._attempts = 0
        # How the workers ended as this agent saw them: FINISHED or STOPPED (they exited 0 or 75),
        # BAD_INPUT (one exited 2: a restart cannot fix it); RUNNING until then.
        self.outcome = Outcome.RUNNING
        self.stop = StopResult()  # filled when a stop signal to the launcher ends the workers
        self._attempt_id = ""
        self._peers = PeerNodes(launch.rdzv_endpoint)  # this attempt's other nodes: a lost one is named as the cause
        # A local failure in a multi-node job, its cause decided once the peers' liveness is known.
        self._undecided: tuple[str, Callable[[], str]] | None = None
        self._verdicts = RestartVerdicts(launch.ft)  # no progress, the same failure twice, a restart storm

    # ------------------------------------------------------------------ starting
    def before_rendezvous(self) -> None:
        if self._launch.health is not None:
            self._launch.health.check()  # raises NodeUnhealthy: this node joins no attempt, starts no worker

    def _start_workers(self, worker_group: WorkerGroup) -> dict[int, Any]:
        if self._launch.monitor is not None and self._attempts > 0:
            self._launch.record.note_progress(self._launch.monitor.progress())  # the attempt that just ended
            self._launch.monitor.reset()  # between attempts only, so stack files count from attempt 0
        self._decide(None)
        self._events.reset()
        attempt = self._launch.record.begin(self._attempts, worker_group.workers[0].world_size)
        self._attempts += 1
        self._attempt_id = agree_attempt_id(worker_group, worker_group.spec.max_restarts - self.restarts_left)
        self._peers.publish(worker_group, self._attempt_id, worker_group.spec.monitor_interval)
        # Elastic builds every worker's environment, then calls start_processes(); we keep the
        # first and replace the second, so the workers get our process contexts.
        with self.processes_started_by(self._start_processes):
            pids = super()._start_workers(worker_group)
        expect_connections(self._launch.monitor, isinstance(self.worker_context, ForkedContext), worker_group, pids)
        restart = worker_group.spec.max_restarts - self.restarts_left
        log.info("attempt %d started: world size %d, %d local workers (pids %s), restart %d of %d",
                 attempt.number, attempt.world_size, len(pids), " ".join(str(p) for p in pids.values()),
                 restart, worker_group.spec.max_restarts)
        return pids

    def _start_processes(self, name, entrypoint, args, envs, logs_specs, log_line_prefixes=None,
                         **options) -> WorkerGroupContext:
        context = start_context(self._launch, self._attempt_id, dict(name=name, entrypoint=entrypoint, args=args,
                                envs=envs, logs_specs=logs_specs, log_line_prefixes=log_line_prefixes), options)
        REQUESTS.arm()  # starting a context installs elastic's own signal handlers: ours again
        return context

    # ------------------------------------------------------------------ watching
    def _monitor_workers(self, worker_group: WorkerGroup) -> RunResult:
        if self._launch.monitor is not None:
            self._launch.monitor.check_alive()  # raises: job.py ends the job (exit 1) with its message
        self._peers.beats.beat()  # this node's liveness counter, for the other nodes
        events = self._events.take()
        if events:
            first = blame.report_hangs(events)
            here = f"{first.kind.replace('_', ' ')} on rank {first.rank}"
            self._local_failure(here, lambda: here)
            self._launch.record.note_detection(first)
            self._judge(first.local_rank, first.rank, None)
            return RunResult(state=WorkerState.UNHEALTHY)
        result = super()._monitor_workers(worker_group)
        if result.state == WorkerState.FAILED and result.failures:
            rank, first = self._first_failure(result)
            group = self.group
            pids = group.pids() if group is not None else {}
            ranks = {w.local_rank: (w.global_rank, pids.get(w.local_rank, -1)) for w in worker_group.workers}
            ranks[first.local_rank] = (rank, first.pid)
            codes = group.exit_codes() if group is not None else {first.local_rank: first.exitcode}
            order = group.exit_order() if group is not None else []
            self._local_failure(f"rank {rank} failed ({blame.short(first.exitcode)})",
                                partial(blame.crash_cause, ranks, first.local_rank, first.exitcode, order, codes))
            final = Outcome.of_worker_exit(first.exitcode)
            if final is not None:
                # train.py exits 2 for a config or checkpoint the user must fix, 93 for a non-finite loss:
                # retrying only repeats it.
                self.outcome, self.restarts_left = final, 0
                log.error("exit code %d means %s (see the worker's message above): not restarting",
                          first.exitcode, "bad configuration or input" if final is Outcome.BAD_INPUT
                          else "restarting cannot help")
            else:
                self._judge(first.local_rank, rank, of_failure(rank, first.exitcode, first.error_file_data))
        elif result.state == WorkerState.SUCCEEDED:
            codes = self.group.exit_codes() if self.group is not None else {}
            stopped = any(code == ExitCode.STOPPED_ON_REQUEST for code in codes.values())
            self._peers.beats.leaving()  # it waits at the exit barrier now, not lost
            self.outcome = Outcome.STOPPED if stopped else Outcome.FINISHED
            self._end_attempt("stopped on request" if stopped else "finished", self.outcome)
        return result

    def _judge(self, local_rank: int, rank: int, signature: FailureSignature | None) -> None:
        """A failed attempt with restarts left: stop here (93) when the restart verdicts say it cannot help."""
        if self.restarts_left <= 0:
            return
        monitor = self._launch.monitor
        reason = self._verdicts.judge(self._launch.record, local_rank, rank, signature,
                                      monitor.progress(fresh=True) if monitor is not None else None)
        if reason is not None:
            self.outcome, self.restarts_left = Outcome.CANNOT_HELP, 0
            log.error("%s", reason)

    @property
    def group(self) -> WorkerGroupContext | None:
        """The worker group's process context: ours once workers started (_start_processes), else None."""
        context = self.worker_context
        return context if isinstance(context, WorkerGroupContext) else None

    def _first_failure(self, result: RunResult):
        by_local = {f.local_rank: (g, f) for g, f in result.failures.items()}
        order = self.group.exit_order() if self.group is not None else []
        for local in order:
            if local in by_local:
                return by_local[local]
        first = min(result.failures.values(), key=lambda f: f.timestamp)
        return by_local[first.local_rank]

    def hung_ranks_now(self) -> list[int]:
        return self._events.hung_now()

    def _fail_attempt(self, cause: str) -> None:
        self._end_attempt(cause, Outcome.FAILED)

    def _local_failure(self, here: str, cause: Callable[[], str]) -> None:
        """A local rank failed or hung: with other nodes, watch their counters while the workers are ended
        (``_decide``); a lost one is the cause. ``cause()`` logs and gives it otherwise."""
        self._peers.beats.leaving()  # from now on this node's counter stands still: the others know why
        if not self._peers.start_check():
            return self._fail_attempt(cause())
        self._fail_attempt(here)  # ends the attempt now (the detection time); the cause follows
        self._undecided = (here, cause)

    def _decide(self, ended_at: float | None) -> None:
        if self._undecided is None:
            return
        (here, cause), self._undecided = self._undecided, None
        attempt = self._launch.record.current
        decided = self._peers.blame_lost(here, ended_at) or cause()
        if attempt is not None and attempt.outcome is Outcome.FAILED:
            attempt.cause = decided

    def _end_attempt(self, cause: str, outcome: Outcome) -> None:
        attempt = self._launch.record.current
        if attempt is not None and attempt.outcome is Outcome.RUNNING:
            attempt.cause, attempt.outcome, attempt.ended = cause, outcome, time.monotonic()

    # ------------------------------------------------------------------ restarting
    def _restart_workers(self, worker_group: WorkerGroup) -> None:
        spec = worker_group.spec
        self._peers.beats.leaving()
        if worker_group.state == WorkerState.HEALTHY:
            self._fail_attempt("another node left or joined; restarting with it")
            log.warning("another node is waiting at the rendezvous: restarting this node's workers with it")
        else:
            log.warning("restarting the worker group (restart %d of %d)",
                        spec.max_restarts - self.restarts_left, spec.max_restarts)
        super()._restart_workers(worker_group)

    def shutdown_workers(self, death_sig, timeout) -> None:
        self._peers.beats.leaving()  # the job ends here: the other nodes see why this counter stops
        super().shutdown_workers(death_sig, timeout)

    def on_group_ended(self, group: WorkerGroupContext, running: dict[int, int]) -> None:
        # Workers ended for a restart that all saved and exited 75 (another node joined or left, and the
        # loop stopped on SIGTERM): the attempt's work is kept; only the restart is time lost.
        self._decide(time.monotonic())
        codes = group.exit_codes()
        attempt = self._launch.record.current
        if attempt is not None and running and all(codes.get(r) == ExitCode.STOPPED_ON_REQUEST for r in running):
            attempt.saved = True
