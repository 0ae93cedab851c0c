"""``ft_launcher``: the command-line entry; starts the fork server first, then plans and runs the jobs.

Exit codes (ft.ExitCode): 0 finished, 1 failed (restart budget spent), 2 usage error or a run directory
held by another job (nothing started), 75 stopped on request with a checkpoint saved (requeue and
relaunch to continue), 93 restarting cannot help (a worker said so, or no progress, the same failure twice, a restart storm).
``ft_launcher --status RUN_DIR`` reports on a run from its files instead (``launcher/status.py``).
"""

from __future__ import annotations

import os
import signal
import sys


class _StoppedEarly(BaseException):
    """A stop signal arrived before any worker was started.

    A BaseException, so that no ``except Exception`` on the way (Hydra's composition, our own
    config errors) turns a stop request into "bad input".
    """


def _stop_early(signum, _frame):
    raise _StoppedEarly(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0].split("=", 1)[0] == "--status":  # a report from a run's files: no script, nothing started
        from launcher.status import main as status
        from launcher.status import status_argv

        return status(status_argv(argv))
    # Before anything heavy: the fork server imports torch while this process does its own work.
    from launcher.cli import stop_signals
    from launcher.cli.args import launcher_flags, peek_nproc, wants_fork_server

    # Before the fork server starts: it ignores these, and the workers it forks treat them as stop requests.
    early_stop = stop_signals.peek(argv, launcher_flags)
    stop_signals.export(early_stop)
    server = None
    if wants_fork_server(argv):
        nproc = peek_nproc(argv)
        if "OMP_NUM_THREADS" not in os.environ and nproc is not None and nproc > 1:
            os.environ["OMP_NUM_THREADS"] = "1"  # read by OpenMP/OpenBLAS when the zygote imports torch
        from launcher.workers.fork_server import ForkServer

        server = ForkServer()
    # Until the job installs elastic's handlers: a stop request now ends the launch cleanly (75).
    for sig in early_stop:
        signal.signal(sig, _stop_early)
    try:
        return _run(argv, server)
    except _StoppedEarly as exc:
        from ft import ExitCode

        sys.stderr.write(f"ft_launcher: {exc} before any worker started; stopping\n")
        return ExitCode.STOPPED_ON_REQUEST  # nothing was lost: relaunch to run
    finally:
        # The job has ended and its exit code is decided: a stop request now (a scheduler's late
        # SIGTERM) has nothing left to stop, so it must not raise out of the fork server's close.
        for sig in {*early_stop, signal.SIGINT, signal.SIGTERM}:
            signal.signal(sig, signal.SIG_IGN)
        if server is not None:
            server.close()


def _run(argv: list[str], server) -> int:
    from ft import ExitCode
    from launcher.cli.args import UsageError, parse
    from launcher.records.report import setup_logging

    setup_logging()
    try:
        args = parse(argv)
        from launcher.cli.inputs import check_inputs
        from launcher.job.devices import check_devices
        from launcher.planning.plan import plan_jobs, settle_run_id

        nproc = check_inputs(args)
        settle_run_id(args)
        plans = plan_jobs(args)
        check_devices([plan.device for plan in plans], nproc)
    except UsageError as exc:
        sys.stderr.write(f"ft_launcher: error: {exc}\n")
        return ExitCode.USAGE_ERROR
    if plans and plans[0].sweep_dir is not None:
        if server is not None:
            server.close()  # each point is an ft_launcher of its own, with its own fork server
        return _sweep(argv, args, plans)
    from launcher.cli.args import parse_nnodes
    from launcher.job.run import prepare_environment, run_job
    from launcher.job.run_dir_lock import RunDirBusy, RunDirLock
    from launcher.records.report import summary_table

    lock = None
    if plans[0].run_dir is not None:
        # The nodes of one multi-node job share its run directory; every other launch holds it alone.
        lock = RunDirLock(plans[0].run_dir, args.rdzv_id if parse_nnodes(args.nnodes)[1] > 1 else None)
        try:
            lock.acquire()
        except RunDirBusy as exc:
            sys.stderr.write(f"ft_launcher: error: {exc}\n")
            return ExitCode.USAGE_ERROR
    try:
        prepare_environment(nproc, args.stop_signals)
        record = run_job(args, plans[0], nproc, server)
    finally:
        if lock is not None:
            lock.release()
    summary_table([record])
    return record.exit_code


def _sweep(argv: list[str], args, plans) -> int:
    """``-m``: every point is ``ft_launcher <these flags> script <its overrides> hydra.run.dir=<its dir>``."""
    from launcher.planning.hydra_config import split_script_args
    from launcher.planning.plan import quote
    from launcher.sweeps import Sweep, SweepPoint, program_digest, shown_overrides

    script_at = len(argv) - len(args.training_script_args) - 1
    launcher = [sys.executable, "-m", "launcher.cli", *argv[:script_at], argv[script_at]]
    command_line = split_script_args(args.training_script_args).overrides
    digest = program_digest(["-m", args.training_script] if args.module else [args.training_script])
    points = [SweepPoint(number, plan.overrides, plan.run_dir,
                         [*launcher, *plan.hydra_flags, *plan.overrides, f"hydra.run.dir={quote(str(plan.run_dir))}"],
                         plan.metric, shown=shown_overrides(plan.overrides, command_line), program=digest)
              for number, plan in enumerate(plans)]
    sweep = Sweep(plans[0].sweep_dir, n_jobs=1, stop_signals=args.stop_signals)
    sweep.run(points)
    return sweep.exit_code


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console()
