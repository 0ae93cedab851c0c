"""How one job's workers are started: their environment, the process context that runs them, the monitor's roster."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ft.monitor.rank_watch import ExpectedWorker
from ft.shared.config import FaultToleranceConfig
from ft.shared.contracts import ATTEMPT_ID_ENV, STACK_FILE_ENV
from launcher.compat import context_options
from launcher.job.record import JobRecord
from launcher.job.worker_store import USE_AGENT_STORE_ENV, WorkerStore
from launcher.workers.fork_server import ForkServer, ForkServerError
from launcher.workers.pcontext import ForkedContext, ProcessContext, WorkerGroupContext

log = logging.getLogger("launcher")
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
    rdzv_endpoint: str = ""  # multi-node jobs: where the rendezvous store is, to name its host when it is gone
    health: Any | None = None  # launcher.health.NodeHealth: checked before each rendezvous


def start_context(launch: WorkerLaunch, attempt_id: str, common: dict[str, Any],
                  options: dict[str, Any]) -> WorkerGroupContext:
    """Start the attempt's workers: the fork server's, or new processes if it cannot (from then on)."""
    envs = common["envs"]
    store = launch.worker_store
    hosted = store is not None and bool(envs) and store.open(int(next(iter(envs.values()))["MASTER_PORT"]))
    for env in envs.values():
        if hosted:
            env[USE_AGENT_STORE_ENV] = "True"
        env.update(launch.extra_env)
        env[ATTEMPT_ID_ENV] = attempt_id
        if launch.monitor is not None:
            env.update(launch.monitor.worker_env())
            env[STACK_FILE_ENV] = str(launch.monitor.stack_file(int(env["RANK"])))
    common = {**common, **context_options(options)}
    if launch.fork_server is not None:
        context = ForkedContext(**common, fork_server=launch.fork_server, command=launch.command)
        try:
            context.start()
            return context
        except ForkServerError as exc:
            log.warning("%s; starting workers as new processes from now on", exc)
            launch.fork_server = None
    context = ProcessContext(**common)
    context.start()
    return context


def expect_connections(monitor: Any | None, forked: bool, worker_group: Any, pids: dict[int, int]) -> None:
    """Have the monitor watch every started worker until it connects (a hang before init is a hang too)."""
    if monitor is None:
        return
    started = time.monotonic_ns()
    monitor.expect_workers([
        ExpectedWorker(local_rank=w.local_rank, rank=w.global_rank, pid=pids[w.local_rank], start_ns=started,
                       stack_file=monitor.stack_file(w.global_rank) if forked else None,
                       no_stacks_reason=None if forked else NO_EARLY_STACKS)
        for w in worker_group.workers if w.local_rank in pids
    ])
