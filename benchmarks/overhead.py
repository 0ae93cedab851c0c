"""Training throughput with fault tolerance on (heartbeats, stop agreement) vs off, same run, 2 ranks.

Runs the default model under ft_launcher, alternating `fault_tolerance=default` and
`fault_tolerance=off`, and reads steps/s from metrics.jsonl between a warm-up step and the last
step (start-up, the first DDP step and the final checkpoint are excluded). Target: on/off >= 0.99.

    .venv/bin/python benchmarks/overhead.py [--pairs 4] [--steps 1500] [--warmup 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = Path(sys.executable).parent / "ft_launcher"
MODES = {"on": "fault_tolerance=default", "off": "fault_tolerance=off"}


def steps_per_second(mode: str, steps: int, warmup: int, log_every: int) -> float:
    """One job; steps/s over steps (warmup, steps] from rank 0's metrics.jsonl timestamps."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"pulsetrain-overhead-{mode}-"))
    cmd = [str(LAUNCHER), "--standalone", "--nproc-per-node=2", "train.py", MODES[mode],
           f"trainer.max_steps={steps}", f"trainer.log_every={log_every}", "trainer.val_every=0",
           "trainer.progress=true", f"checkpoint.every={steps}", f"hydra.run.dir={run_dir}"]
    env = {k: v for k, v in os.environ.items() if k != "PULSETRAIN_FT_ENDPOINT"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise SystemExit(f"{mode} run timed out") from None
    try:
        if proc.returncode != 0:
            raise SystemExit(f"{mode} run failed ({proc.returncode}):\n{out[-3000:]}")
        times = {}
        for line in (run_dir / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "loss" in record:
                times[record["step"]] = record["time"]
        return (steps - warmup) / (times[steps] - times[warmup])
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="on/off pairs, alternating order (default 4)")
    parser.add_argument("--steps", type=int, default=1500, help="steps per run (default 1500)")
    parser.add_argument("--warmup", type=int, default=300, help="steps excluded at the start (default 300)")
    args = parser.parse_args()
    log_every = args.warmup
    if args.steps % log_every or args.steps <= args.warmup:
        raise SystemExit("--steps must be a multiple of --warmup and larger than it")

    console = Console()
    rates: dict[str, list[float]] = {"on": [], "off": []}
    ratios = []
    for pair in range(args.pairs):
        order = ("on", "off") if pair % 2 == 0 else ("off", "on")  # alternate: drift hits both sides
        got = {mode: steps_per_second(mode, args.steps, args.warmup, log_every) for mode in order}
        for mode in order:
            rates[mode].append(got[mode])
        ratios.append(got["on"] / got["off"])
        console.print(f"pair {pair + 1}/{args.pairs}: on {got['on']:.1f} steps/s, off {got['off']:.1f} steps/s, "
                      f"ratio {ratios[-1]:.4f}")

    table = Table(title=f"FT overhead: default model, 2 ranks, gloo/CPU, {args.steps - args.warmup} timed steps per run")
    for column in ("mode", "median steps/s", "min", "max", "runs"):
        table.add_column(column, justify="right")
    for mode in ("on", "off"):
        values = rates[mode]
        table.add_row(mode, f"{statistics.median(values):.1f}", f"{min(values):.1f}", f"{max(values):.1f}",
                      str(len(values)))
    console.print(table)
    median_ratio = statistics.median(ratios)
    per_step_us = (1 / statistics.median(rates["on"]) - 1 / statistics.median(rates["off"])) * 1e6
    verdict = "meets" if median_ratio >= 0.99 else "misses"
    console.print(f"on/off ratio: median {median_ratio:.4f} (pairs: {', '.join(f'{r:.4f}' for r in ratios)}); "
                  f"{verdict} the >= 0.99 target; estimated cost per step {per_step_us:+.0f} us")


if __name__ == "__main__":
    main()
