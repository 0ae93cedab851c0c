"""Teardown soak: N consecutive ft_launcher jobs, each with one restart; counts the jobs that hang.

Each job is the minimal 2-rank DDP worker (``tests/launcher_workers/ddp_worker.py``): rank 1 exits
with code 1 at step 3 of attempt 0, the launcher restarts the group, and attempt 1 runs its steps
and calls ``destroy_process_group()``. A job that has not exited ``--deadline`` seconds after it
started is counted as a hang: every process it left gets a gdb backtrace (when gdb is installed) in
the output directory, then SIGKILL. Prints one line per job and the totals.

    .venv/bin/python benchmarks/teardown.py --launches 100
    .venv/bin/python benchmarks/teardown.py --launches 20 --no-fork-server --preimport torch._dynamo

The second command is the control: plain worker processes that import ``torch._dynamo`` before their
process group exists, which is what made gloo teardown deadlock (docs/launcher.md, "Fork server").
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the /proc walk the tests use too
from ft_helpers.process_tree import descendants  # noqa: E402

WORKER = REPO / "tests" / "launcher_workers" / "ddp_worker.py"
LAUNCHER = Path(sys.executable).parent / "ft_launcher"


def _backtraces(pids: list[int], out: Path, job: int) -> None:
    gdb = shutil.which("gdb")
    for pid in pids:
        if gdb is None:
            break
        try:
            trace = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt 30"],
                                   capture_output=True, text=True, timeout=120).stdout
        except subprocess.TimeoutExpired:
            continue
        (out / f"stuck.job{job}.pid{pid}.gdb").write_text(trace)


def one_job(job: int, out: Path, args: argparse.Namespace) -> tuple[str, float]:
    work = out / f"job{job}"
    work.mkdir()
    command = [str(LAUNCHER), "--standalone", "--nproc-per-node=2", "--max-restarts=1", "--monitor-interval=0.1",
               *(["--no-fork-server"] if args.no_fork_server else []),
               str(WORKER), f"out={work}", f"steps={args.steps}", "crash=1@0",
               *([f"preimport={args.preimport}"] if args.preimport else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    with (work / "launcher.log").open("wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=args.deadline)
        except subprocess.TimeoutExpired:
            stuck = descendants(proc.pid)
            _backtraces(stuck, out, job)
            for pid in [*stuck, proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()
            return "HUNG", time.monotonic() - started
    elapsed = time.monotonic() - started
    restarted = (work / "first_step.a1.r0").exists() and (work / "first_step.a1.r1").exists()
    if code != 0 or not restarted:
        return f"failed (exit {code}, restarted: {restarted})", elapsed
    return "ok", elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=100, help="jobs to run one after another (default 100)")
    parser.add_argument("--steps", type=int, default=20, help="steps per attempt (default 20)")
    parser.add_argument("--deadline", type=float, default=90.0, help="seconds before a job counts as hung")
    parser.add_argument("--no-fork-server", action="store_true", help="start workers as plain processes")
    parser.add_argument("--preimport", default="", help="modules each worker imports before its process group")
    parser.add_argument("--out", type=Path, default=None, help="keep logs and backtraces here (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="teardown-"))
    out.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, float]] = []
    for job in range(args.launches):
        outcome, elapsed = one_job(job, out, args)
        results.append((outcome, elapsed))
        print(f"job {job:3d}: {outcome} in {elapsed:.1f} s", flush=True)
    hung = sum(outcome == "HUNG" for outcome, _ in results)
    failed = sum(outcome not in ("ok", "HUNG") for outcome, _ in results)
    times = [elapsed for outcome, elapsed in results if outcome == "ok"]
    median = f"{statistics.median(times):.1f} s" if times else "-"
    print(f"{args.launches} jobs (each with one restart): {hung} hung, {failed} failed otherwise, "
          f"median {median} per finished job; logs in {out}")
    return 1 if hung or failed else 0


if __name__ == "__main__":
    sys.exit(main())
