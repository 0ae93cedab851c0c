"""Soak: random faults against one 2-rank train.py job until it finishes; its weights must match an
uninterrupted run bit for bit, and no worker may outlive a SIGKILLed launcher.

Every few seconds one of: SIGKILL a random rank, SIGSTOP a random rank (a hang), SIGTERM the launcher
(a preemption), SIGKILL the launcher (a node loss). After each launcher exit that is not "finished",
the job is relaunched with the same run directory, as a batch script that requeues on exit 75 would
(and as a cluster would after a node loss). Bounded in faults and in time; prints what happened.
Run: ``.venv/bin/python benchmarks/soak.py --faults 30``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the /proc walk the tests use too
from ft_helpers.process_tree import alive, descendants  # noqa: E402
from ft_helpers.process_tree import children as tree  # noqa: E402

from train.checkpoint.store import CheckpointStore  # noqa: E402

# A fault every few seconds on purpose: the restart-storm and no-progress verdicts would (rightly) end it.
LAUNCHER = [str(Path(sys.executable).parent / "ft_launcher"), "--standalone", "--nproc-per-node=2",
            "--max-restarts=1000", "--term-timeout=10", "--ft-restart-storm-restarts=0",
            "--ft-max-no-progress-attempts=0"]
FAULTS = ("kill rank", "stop rank", "sigterm launcher", "sigkill launcher")


def job(run_dir: Path, max_steps: int) -> list[str]:
    return ["train.py", f"trainer.max_steps={max_steps}", "checkpoint.every=25", "trainer.eval_every=0",
            "trainer.log_every=50", "trainer.progress=false", "fault_tolerance=demo", f"hydra.run.dir={run_dir}"]


def start(run_dir: Path, max_steps: int, log) -> subprocess.Popen:
    return subprocess.Popen([*LAUNCHER, *job(run_dir, max_steps)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def ranks(launcher: int) -> list[int]:
    """The rank processes: children of the fork server (or of the launcher without one)."""
    children = tree()
    direct = children.get(launcher, [])
    zygotes = [p for p in direct if b"launcher.workers.zygote" in Path(f"/proc/{p}/cmdline").read_bytes()] if direct else []
    parents = zygotes or [launcher]
    return [r for parent in parents for r in children.get(parent, []) if r not in zygotes]


def final_weights(run_dir: Path) -> tuple[int, dict]:
    newest = CheckpointStore(run_dir / "checkpoints").checkpoints()[-1]
    state = torch.load(newest.path, weights_only=True)
    return state["step"], state["model"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=30, help="how many faults to inject (default 30)")
    parser.add_argument("--max-steps", type=int, default=3000, help="steps of the job (default 3000)")
    parser.add_argument("--every", type=float, nargs=2, default=(2.0, 5.0), help="seconds between faults")
    parser.add_argument("--limit", type=float, default=1800, help="give up after this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    work = Path(tempfile.mkdtemp(prefix="pulsetrain_soak_"))
    log = (work / "launcher.log").open("w")
    print(f"soak in {work} (launcher output: {work / 'launcher.log'})")
    reference = work / "reference"
    code = subprocess.run([*LAUNCHER, *job(reference, opts.max_steps)], cwd=REPO, stdout=log,
                          stderr=subprocess.STDOUT, timeout=opts.limit).returncode
    if code != 0:
        print(f"the uninterrupted run failed with {code}")
        return 1
    run_dir, counts, exits, orphans = work / "run", dict.fromkeys(FAULTS, 0), [], 0
    deadline = time.monotonic() + opts.limit
    proc = start(run_dir, opts.max_steps, log)
    injected = 0
    while time.monotonic() < deadline:
        try:
            code = proc.wait(timeout=rng.uniform(*opts.every))
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            exits.append(code)
            if code == 0:
                break
            proc = start(run_dir, opts.max_steps, log)  # requeue: same run directory
            continue
        if injected >= opts.faults:
            continue  # no more faults: let the job finish
        fault = rng.choice(FAULTS)
        workers = ranks(proc.pid)
        if fault in ("kill rank", "stop rank"):
            if not workers:
                continue  # between attempts
            os.kill(rng.choice(workers), signal.SIGKILL if fault == "kill rank" else signal.SIGSTOP)
        elif fault == "sigterm launcher":
            proc.send_signal(signal.SIGTERM)
        else:
            everything = descendants(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            time.sleep(2.0)  # PDEATHSIG is immediate; give the kernel a moment to deliver it
            left = [p for p in everything if alive(p)]
            orphans += len(left)
            for pid in left:
                try:
                    what = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120].decode()
                except OSError:
                    what = "?"
                print(f"left behind by a SIGKILLed launcher: pid {pid}: {what}")
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            exits.append(proc.returncode)
            proc = start(run_dir, opts.max_steps, log)  # the node came back: relaunch
        counts[fault] += 1
        injected += 1
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        print("time limit reached before the job finished")
        return 1
    step, weights = final_weights(run_dir)
    ref_step, ref_weights = final_weights(reference)
    same = step == ref_step and all(torch.equal(weights[k], ref_weights[k]) for k in ref_weights)
    print(f"faults injected: {injected} ({', '.join(f'{k}: {v}' for k, v in counts.items())})")
    print(f"launcher exits before finishing: {exits[:-1]}; launches: {len(exits)}")
    print(f"processes left behind by a SIGKILLed launcher: {orphans}")
    print(f"final step {step} of {ref_step}; weights bitwise equal to the uninterrupted run: {same}")
    return 0 if same and orphans == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
