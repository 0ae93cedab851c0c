"""Straggler measurement on clean steps: false positives (target 0) and its cost as a share of step time (<= 0.5%).

One ft_launcher job of 2 ranks (gloo, CPU) trains the default model for ``--steps`` steps with no fault,
timing each step as train/loop.py runs it, with the watch on (``StragglerWatch`` at the trainer defaults
from conf/): the time inside the watch's own calls (the two clock reads per step, the all-gather and
decision per window) is summed directly, which on a shared machine is far less noisy than comparing two
runs. Every straggler named is a false positive.

    .venv/bin/python benchmarks/stragglers.py [--steps 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = Path(sys.executable).parent / "ft_launcher"


class Named:
    """The watch's event sink: counts what it names."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def event(self, event, step, **fields) -> None:
        self.rows.append({"step": step, **fields})


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from hydra import compose, initialize_config_dir

    import train  # noqa: F401  (registers the config schema and resolvers)
    from train import distributed
    from train.components import build_components
    from train.config.checks import StepSettings
    from train.loop import train_step
    from train.stragglers import StragglerWatch

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"run_dir={args.out.parent}"])
    ctx = distributed.setup()
    parts = build_components(cfg, ctx)
    settings = StepSettings.from_config(cfg.trainer)
    named = Named()
    watch = StragglerWatch.from_config(cfg, ctx, named)
    clock = time.perf_counter
    watch_s, step_times = 0.0, []
    for step in range(1, args.steps + 1):
        began = clock()
        t0 = clock()
        watch.begin()
        t1 = clock()
        mark = []

        def compute_done(mark: list = mark) -> None:
            a = clock()
            watch.compute_done()
            mark.append(clock() - a)

        train_step(parts, ctx.device, settings, None, compute_done)
        t2 = clock()
        watch.after_step(step)
        t3 = clock()
        watch_s += (t1 - t0) + mark[0] + (t3 - t2)
        step_times.append(t3 - began)
    parts.train_batches.close()
    # Every rank's time in the window checks: a rank that waits there for a slower peer would wait in the
    # next gradient all-reduce anyway; the rank that arrives last waits for no one, so its time is the
    # check's own cost.
    import torch.distributed as dist

    checks = [0.0] * ctx.world_size
    if dist.is_initialized():
        dist.all_gather_object(checks, watch.checked_s)
    else:
        checks = [watch.checked_s]
    distributed.teardown(ctx, parts)
    if ctx.is_main:
        args.out.write_text(json.dumps({"named": named.rows, "watch_s": watch_s, "steps": args.steps,
                                        "checked_by_rank_s": checks,
                                        "median_step_s": statistics.median(step_times),
                                        "total_s": sum(step_times), "checked_s": watch.checked_s,
                                        "window": cfg.trainer.straggler_window_steps,
                                        "factor": cfg.trainer.straggler_factor,
                                        "windows": cfg.trainer.straggler_windows}))


def driver(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pulsetrain-stragglers-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [str(LAUNCHER), "--standalone", "--nproc-per-node=2", __file__, "--worker", f"--out={out}",
               f"--steps={args.steps}"]
        env = {k: v for k, v in os.environ.items() if k != "PULSETRAIN_FT_ENDPOINT"}
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise SystemExit("benchmark job timed out") from None
        if proc.returncode != 0 or not out.exists():
            raise SystemExit(f"benchmark job failed ({proc.returncode}):\n{log[-3000:]}")
        r = json.loads(out.read_text())
    share = 100 * r["watch_s"] / r["total_s"]
    print(f"{r['steps']} clean steps, 2 ranks, gloo/CPU, default model; windows of {r['window']} steps, "
          f"factor {r['factor']}, {r['windows']} windows in a row")
    print(f"false positives: {len(r['named'])} (target 0){''.join(f'; {n}' for n in r['named'])}")
    print(f"cost: {1e6 * r['watch_s'] / r['steps']:.2f} us per step ({1e6 * r['checked_s'] / r['steps']:.2f} us of "
          f"it in the window checks), {share:.3f}% of the step time (median step {1e3 * r['median_step_s']:.2f} ms): "
          f"{'meets' if share <= 0.5 else 'misses'} the <= 0.5% target")
    own_s = r["watch_s"] - r["checked_s"] + min(r["checked_by_rank_s"])
    own = 100 * own_s / r["total_s"]
    by_rank = ", ".join(f"{1e6 * s / r['steps']:.2f}" for s in r["checked_by_rank_s"])
    print(f"own cost (the window checks timed on the rank that arrives last, which waits for no one; ranks: "
          f"{by_rank} us per step): "
          f"{1e6 * own_s / r['steps']:.2f} us per step, {own:.3f}% of the step time: "
          f"{'meets' if own <= 0.5 else 'misses'} the <= 0.5% target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=600, help="seconds before the job is killed")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    worker(args) if args.worker else driver(args)


if __name__ == "__main__":
    main()
