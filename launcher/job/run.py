"""Run one fault-tolerant job: rendezvous, rank monitor, elastic agent, and the job's exit code."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from torch.distributed.elastic.agent.server.api import WorkerSpec, WorkerState
from torch.distributed.elastic.multiprocessing import Std
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.rendezvous import RendezvousParameters
from torch.distributed.elastic.rendezvous import registry as rdzv_registry
from torch.distributed.elastic.rendezvous.utils import parse_rendezvous_endpoint

from ft import ExitCode
from launcher.cli.args import LaunchArgs, parse_nnodes
from launcher.cli.stop_signals import export as export_stop_signals
from launcher.cli.stop_signals import ignore_repeats as ignore_stop_signals
from launcher.cli.torchrun_extras import logs_specs_class
from launcher.compat import parse_rendezvous_config, rendezvous_without_random_skew, untested_torch
from launcher.health import HealthChecksUnusable, NodeUnhealthy, for_plan
from launcher.job.agent import FaultTolerantAgent
from launcher.job.outcome import Outcome
from launcher.job.record import JobRecord
from launcher.job.stop_outcome import StopResult
from launcher.job.stop_requests import REQUESTS
from launcher.job.worker_launch import WorkerLaunch
from launcher.job.worker_store import WorkerStore
from launcher.planning.plan import JobPlan
from launcher.records import launch_log
from launcher.records.report import settings_table
from launcher.workers.fork_server import ForkServer

log = logging.getLogger("launcher")


def prepare_environment(nproc: int, stop_signals: tuple[signal.Signals, ...]) -> None:
    """Process-wide settings every job of this launch shares."""
    import torch

    warning = untested_torch(torch.__version__)
    if warning:
        log.warning("%s", warning)
    # torch 2.13 + gloo: with the rendezvous store shared with the workers, restarts failed 6 of 10
    # times here (pytorch issue 135712); with a separate store, 8 of 8 succeeded.
    os.environ.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    if "OMP_NUM_THREADS" not in os.environ and nproc > 1:
        os.environ["OMP_NUM_THREADS"] = "1"  # as torchrun: one thread per worker unless told otherwise
    export_stop_signals(stop_signals)
    # Elastic installs its handlers when workers start (and the agent ours again then); install ours
    # now, so a signal during config or rendezvous also ends in an orderly exit.
    REQUESTS.arm()


def _rendezvous(args: LaunchArgs, nproc: int):
    min_nodes, max_nodes = parse_nnodes(args.nnodes)
    backend, endpoint, run_id = args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id
    if args.standalone:
        backend, endpoint = "c10d", "localhost:0"  # run id: already fresh and unique (plan.settle_run_id)
    elif backend == "static" and not endpoint and args.master_port is None and max_nodes == 1:
        backend, endpoint, run_id = "c10d", "localhost:0", str(uuid.uuid4())
    master_port = args.master_port if args.master_port is not None else 29500
    if backend == "static" and not endpoint:
        endpoint = f"{args.master_addr}:{master_port}"
    configs = parse_rendezvous_config(args.rdzv_conf)
    configs.setdefault("timeout", 900)
    if backend == "static":
        configs["rank"] = args.node_rank
    params = RendezvousParameters(backend=backend, endpoint=endpoint, run_id=run_id, min_nodes=min_nodes,
                                  max_nodes=max_nodes, local_addr=args.local_addr, **configs)
    master_addr = master = None
    if backend == "static":
        master_addr, master = parse_rendezvous_endpoint(endpoint, default_port=master_port)
    return rdzv_registry.get_rendezvous_handler(params), master_addr, master


def _endpoint(args: LaunchArgs, master_addr: str | None, master_port: int | None) -> str:
    """Where the rendezvous store is (named when it cannot be reached)."""
    return args.rdzv_endpoint or (f"{master_addr}:{master_port}" if master_addr else "")


def _command(args: LaunchArgs, plan: JobPlan) -> tuple[str, tuple[str, ...]]:
    if args.no_python:
        return args.training_script, tuple(plan.script_args)
    python = os.getenv("PYTHON_EXEC", sys.executable)
    return python, ("-u", *(["-m"] if args.module else []), args.training_script, *plan.script_args)


def _logs_specs(args: LaunchArgs, plan: JobPlan) -> Any:
    log_dir = args.log_dir or (str(plan.run_dir / "elastic_logs") if plan.run_dir else None)
    ranks = {int(r) for r in args.local_ranks_filter.split(",")} if args.local_ranks_filter else None
    specs = logs_specs_class(args.logs_specs)  # checked by the parser's caller: a UsageError there
    return specs(log_dir=log_dir, redirects=Std.from_str(args.redirects), tee=Std.from_str(args.tee),
                 local_ranks_filter=ranks)


def _stack_dir(args: LaunchArgs, plan: JobPlan) -> tuple[Path, bool]:
    """Where hung ranks' stacks are kept after the job: the run directory, else --log-dir, else a
    temp dir; and whether it is that temp dir (removed at the end unless a stack was written)."""
    if plan.run_dir is not None:
        return plan.run_dir / "stacks", False
    if args.log_dir:
        return Path(args.log_dir) / "stacks", False
    return Path(tempfile.mkdtemp(prefix="ft_launcher_stacks_")), True


def _remove_if_empty(directory: Path) -> None:
    """Remove the temp stacks directory unless a rank's stacks were written into it."""
    for path in directory.glob("stacks-rank*-attempt*.txt"):
        if path.stat().st_size == 0:  # every rank's file exists from its start; only a dump fills it
            path.unlink()
    try:
        directory.rmdir()
    except FileNotFoundError:
        pass
    except OSError:  # not empty: hung ranks' stacks, named in the log; the user's to read
        log.info("stacks of hung ranks kept in %s", directory)


def run_job(args: LaunchArgs, plan: JobPlan, nproc: int, fork_server: ForkServer | None) -> JobRecord:
    """Run ``plan`` to its end; the record holds the attempts and the exit code."""
    record = JobRecord(plan.name, plan.run_dir)
    settings = plan.settings
    settings_table(settings.config.to_dict(), settings.sources, settings.config.enabled)
    if plan.run_dir is not None:
        plan.run_dir.mkdir(parents=True, exist_ok=True)
        log.info("run directory: %s", plan.run_dir)
    extra_env = {"HYDRA_FULL_ERROR": "1"}
    if plan.run_dir is not None:
        extra_env["PULSETRAIN_RUN_DIR"] = str(plan.run_dir)
    monitor = None
    agent = None
    worker_store = None
    shutdown_rdzv = True
    rdzv_handler = None
    temp_stacks = None
    try:
        health = for_plan(plan, None if args.module or args.no_python else args.training_script, settings.config.enabled)
        rdzv_handler, master_addr, master_port = _rendezvous(args, nproc)
        if settings.config.enabled:
            from ft.monitor.rank_monitor import RankMonitor

            stack_dir, temporary = _stack_dir(args, plan)
            temp_stacks = stack_dir if temporary else None
            monitor = RankMonitor(settings.config, stack_dir=stack_dir, sources=settings.sources)
            monitor.start()
        entrypoint, worker_args = _command(args, plan)
        spec = WorkerSpec(role=args.role, local_world_size=nproc, entrypoint=entrypoint, args=worker_args,
                          rdzv_handler=rdzv_handler, max_restarts=args.max_restarts,
                          monitor_interval=args.monitor_interval, master_addr=master_addr,
                          master_port=master_port, local_addr=args.local_addr, **getattr(args.ns, "worker_spec", {}))
        one_node = parse_nnodes(args.nnodes)[1] == 1
        worker_store = WorkerStore() if one_node else None
        launch = WorkerLaunch(command=(bool(args.module), args.training_script), fork_server=fork_server,
                              extra_env=extra_env, monitor=monitor, ft=settings.config, record=record,
                              worker_store=worker_store, rdzv_endpoint=_endpoint(args, master_addr, master_port),
                              health=health)
        agent = FaultTolerantAgent(spec, _logs_specs(args, plan), launch, args.term_timeout)
        with rendezvous_without_random_skew() if one_node else contextlib.nullcontext():
            result = agent.run()
        if result is None:  # the rendezvous was closed by another node
            outcome = Outcome.FAILED
        elif result.state == WorkerState.SUCCEEDED or agent.outcome.not_retried:
            outcome = agent.outcome
        else:
            log.error("the restart budget is spent (--max-restarts=%d): giving up", args.max_restarts)
            outcome = Outcome.FAILED
    except SignalException as exc:
        ignore_stop_signals()  # the workers are stopped: a late repeat has nothing left to stop
        shutdown_rdzv = False  # as torchrun: keep the rendezvous open for a relaunch
        stop = agent.stop if agent is not None else StopResult()
        outcome = stop.outcome
        log.warning("%s received: %s", exc.sigval.name, stop.describe())
        if record.current is not None and record.current.outcome is Outcome.RUNNING:
            record.current.cause, record.current.outcome = f"{exc.sigval.name} to the launcher", Outcome.STOPPED
    except NodeUnhealthy:  # logged with the check that failed; the rendezvous is closed below, so other nodes stop
        outcome = Outcome.UNHEALTHY
    except HealthChecksUnusable as exc:
        log.error("%s", exc)
        outcome = Outcome.BAD_INPUT
    except Exception as exc:  # rendezvous errors and the like: one line, the job failed
        log.error("job failed: %s: %s", type(exc).__name__, " ".join(str(exc).split()))
        outcome = Outcome.FAILED
    finally:
        if agent is not None and agent.worker_context is not None:
            agent.worker_context.close(signal.SIGKILL, 1)  # nothing of this job may outlive it
        if worker_store is not None:
            worker_store.close()
        if rdzv_handler is not None and shutdown_rdzv:
            rdzv_handler.shutdown()
        if monitor is not None:
            record.note_progress(monitor.progress())  # the last attempt's first heartbeat ends the previous one's loss
            monitor.stop()
        if temp_stacks is not None:
            _remove_if_empty(temp_stacks)
    record.end(outcome)
    _log_end(record)
    launch_log.append(record)
    return record


def _log_end(record: JobRecord) -> None:
    total = (record.ended or 0) - record.started
    log.info("%s %s after %.1f s, %d attempt(s), exit code %s", record.name,
             ExitCode.describe(record.exit_code), total, len(record.attempts), record.exit_code)

