"""``ft_launcher``: the command-line entry; starts the fork server first, then plans and runs the jobs.

Exit codes (ft.exit_codes): 0 finished, 1 failed (restart budget spent), 2 usage error (nothing
started), 75 stopped on request with a checkpoint saved (requeue and relaunch to continue).
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
    # Before anything heavy: the fork server imports torch while this process does its own work.
    from launcher import stop_signals
    from launcher.args import launcher_flags, peek_nproc, wants_fork_server

    # Before the fork server starts: it ignores these, and the workers it forks treat them as stop requests.
    early_stop = stop_signals.peek(argv, launcher_flags)
    stop_signals.export(early_stop)
    server = None
    if wants_fork_server(argv):
        nproc = peek_nproc(argv)
        if "OMP_NUM_THREADS" not in os.environ and nproc is not None and nproc > 1:
            os.environ["OMP_NUM_THREADS"] = "1"  # read by OpenMP/OpenBLAS when the zygote imports torch
        from launcher.fork_server import ForkServer

        server = ForkServer()
    # Until the job installs elastic's handlers: a stop request now ends the launch cleanly (75).
    for sig in early_stop:
        signal.signal(sig, _stop_early)
    try:
        return _run(argv, server)
    except _StoppedEarly as exc:
        from ft.exit_codes import STOPPED_ON_REQUEST

        sys.stderr.write(f"ft_launcher: {exc} before any worker started; stopping\n")
        return STOPPED_ON_REQUEST  # nothing was lost: relaunch to run
    finally:
        if server is not None:
            server.close()


def _run(argv: list[str], server) -> int:
    from ft import exit_codes
    from launcher.args import UsageError, parse
    from launcher.report import setup_logging

    setup_logging()
    try:
        args = parse(argv)
        from launcher.devices import check_devices
        from launcher.inputs import check_inputs
        from launcher.plan import plan_jobs, settle_run_id

        nproc = check_inputs(args)
        settle_run_id(args)
        plans = plan_jobs(args)
        check_devices([plan.device for plan in plans], nproc)
    except UsageError as exc:
        sys.stderr.write(f"ft_launcher: error: {exc}\n")
        return exit_codes.USAGE_ERROR
    from launcher.job import prepare_environment, run_job
    from launcher.report import summary_table

    prepare_environment(nproc, args.stop_signals)
    records = []
    for plan in plans:
        records.append(run_job(args, plan, nproc, server))
        if records[-1].exit_code == exit_codes.STOPPED_ON_REQUEST and len(plans) > 1:
            break  # asked to stop: do not start the next sweep point
    summary_table(records)
    codes = [r.exit_code for r in records]
    if len(plans) > 1:
        if any(c == exit_codes.STOPPED_ON_REQUEST for c in codes):
            return exit_codes.STOPPED_ON_REQUEST
        return exit_codes.FINISHED if all(c == 0 for c in codes) else exit_codes.FAILED
    return codes[0]


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console()
