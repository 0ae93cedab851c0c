"""Fault drill: inject every fault kind into a short 2-rank job and check that each run still finishes.

Run it (``make drill``) after changing timeouts, the model or the cluster setup, to prove the job
recovers: hang, kill, exception and a hang while checkpointing must restart and reach the last step;
a SIGTERM must stop all ranks with exit code 75, and a relaunch with the same run directory must
finish from the saved step.

    .venv/bin/python examples/fault_drill.py [--nproc-per-node 2] [--max-steps 300] [--out outputs/drill]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from train.faults import FAULT_KINDS

ROOT = Path(__file__).resolve().parents[1]
# Every registered kind that ends in recovery (a new kind joins the drill by being registered).
KINDS = tuple(name for name, kind in FAULT_KINDS.items() if kind.in_drill)
STOPPED_ON_REQUEST = 75


def launch(run_dir: Path, kind: str, args: argparse.Namespace) -> tuple[int, float]:
    """Run one ft_launcher job; return its exit code and wall time."""
    command = [
        str(Path(sys.executable).with_name("ft_launcher")), "--standalone",
        f"--nproc-per-node={args.nproc_per_node}", "--max-restarts=2", str(ROOT / "train.py"),
        f"fault={kind}", "fault.rank=1", f"fault.step={args.max_steps // 5}", "fault_tolerance=demo",
        f"trainer.max_steps={args.max_steps}", f"checkpoint.every={args.max_steps // 5}",
        "trainer.progress=false", f"hydra.run.dir={run_dir}",
    ]
    # The fault comes early (a fifth of the way): a SIGTERM stop is agreed within ~0.4 s, so it lands
    # well before the last step even on fast steps.
    started = time.monotonic()
    with open(run_dir.parent / f"{run_dir.name}.log", "a") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=300, cwd=ROOT).returncode
    return code, time.monotonic() - started


def last_step(run_dir: Path) -> tuple[int, int]:
    """The last training step in metrics.jsonl and how many attempts (over all launches) logged steps."""
    step, attempts, previous = 0, 0, None
    path = run_dir / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        if "loss" in record:
            step = max(step, record["step"])
            attempts += record.get("attempt", 0) != previous
            previous = record.get("attempt", 0)
    return step, attempts


def drill(kind: str, args: argparse.Namespace) -> tuple[str, bool, str]:
    run_dir = (args.out / kind).resolve()
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    code, seconds = launch(run_dir, kind, args)
    codes = [code]
    relaunches = FAULT_KINDS[kind].drill_relaunches
    if relaunches and code == STOPPED_ON_REQUEST:
        # What a batch script does on 75: requeue and launch again with the same run directory.
        code, more = launch(run_dir, "none", args)
        codes.append(code)
        seconds += more
    step, attempts = last_step(run_dir)
    attempts += len(codes) - 1  # a relaunch starts counting attempts from 0 again
    expected = [STOPPED_ON_REQUEST, 0] if relaunches else [0]
    passed = codes == expected and step == args.max_steps
    detail = f"exit {'→'.join(map(str, codes))}, step {step}/{args.max_steps}, {attempts} attempt(s), {seconds:.1f} s"
    return kind, passed, detail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc-per-node", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "drill")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    args = parser.parse_args()
    console = Console()
    table = Table(title="fault drill")
    for column in ("fault", "result", "details"):
        table.add_column(column)
    failures = 0
    for kind in args.kinds:
        console.log(f"drill: fault={kind} (output in {args.out / kind}.log)")
        name, passed, detail = drill(kind, args)
        failures += not passed
        table.add_row(name, "[green]recovered[/]" if passed else "[red]FAILED[/]", detail)
    console.print(table)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
