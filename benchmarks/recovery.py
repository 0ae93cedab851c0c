"""Recovery benchmark: the same N-rank DDP job under ft_launcher and torchrun, with a hang in attempt 0.

Measures launch → first step (both launchers), hang → detection, detection → first step of the next
attempt and the total (ft_launcher; torchrun never detects a hang, shown as "not detected" after a
bounded wait). Prints a table with ratios against torchrun, measured in the same run.

    .venv/bin/python benchmarks/recovery.py [--nproc 2 8 16] [--repeat 2] [--nvidia VENV/bin/ft_launcher]

``--nvidia`` adds NVIDIA's ft_launcher (nvidia-resiliency-ext, installed in a venv of its own whose
python has torch: its workers run on that python, and the worker sends it heartbeats with NVIDIA's client).

Every rank is a CPU process on gloo, so ranks beyond the core count share cores: the scale rows show
how the launchers cope with that load, not GPU behaviour.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "launcher_workers" / "ddp_worker.py"
BIN = Path(sys.executable).parent
TIMEOUT = 2.0  # rank_heartbeat_timeout for the run with a hang


def _stamp(path: Path) -> float | None:
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return None


def _first_step(out: Path, attempt: int, ranks: int) -> float | None:
    times = [_stamp(out / f"first_step.a{attempt}.r{rank}") for rank in range(ranks)]
    return max(times) if all(times) else None  # a DDP step needs every rank: the later one counts


class Run:
    """One launcher process; remembers when each stderr line arrived."""

    def __init__(self, command: list[str], out: Path, extra_env: dict[str, str] | None = None) -> None:
        self.out = out
        self.lines: list[tuple[float, str]] = []
        env = {**os.environ, "PYTHONPATH": str(REPO), **(extra_env or {})}
        self.started = time.time()
        self.proc = subprocess.Popen(command, cwd=out, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.time(), line.rstrip()))

    def first_line(self, text: str) -> float | None:
        return next((t for t, line in self.lines if text in line), None)

    def wait_for(self, predicate, limit: float):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                return predicate()
            time.sleep(0.01)
        return None

    def end(self, limit: float = 60) -> float:
        """Wait for the launcher; then stop it (SIGTERM, it ends its workers) and anything left."""
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            pass
        ended = time.time()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for pid_file in self.out.glob("pid.*"):  # workers run in their own sessions
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        return ended


# What each fault-tolerant launcher logs when a rank misses its heartbeat deadline.
DETECTED = {"ours": "sent no heartbeat", "nvidia": "Did not get subsequent heartbeat"}


def ft_launcher(out: Path, nproc: int, fork: bool, env: dict[str, str] | None = None,
                binary: Path | None = None) -> dict[str, float | None]:
    """Our ft_launcher, or NVIDIA's when ``binary`` names it (same flags; it has no fork server)."""
    command = [str(binary or BIN / "ft_launcher"), "--standalone", f"--nproc-per-node={nproc}", "--max-restarts=1",
               f"--ft-rank-heartbeat-timeout={TIMEOUT}", "--ft-workload-check-interval=0.1",
               *([] if fork or binary else ["--no-fork-server"]), str(WORKER), f"out={out}", "hang=1@0"]
    run = Run(command, out, env)
    first = run.wait_for(lambda: _first_step(out, 0, nproc), 120)
    hang = run.wait_for(lambda: _stamp(out / "hang.a0.r1"), 60)
    detected = run.wait_for(lambda: run.first_line(DETECTED["nvidia" if binary else "ours"]), TIMEOUT + 30)
    second = run.wait_for(lambda: _first_step(out, 1, nproc), 120)
    ended = run.end()
    return {
        "launch": first - run.started if first else None,
        "detect": detected - hang if detected and hang else None,
        "recover": second - detected if second and detected else None,
        "total": ended - run.started if run.proc.returncode == 0 else None,
    }


def torchrun(out: Path, nproc: int, wait: float) -> dict[str, float | None]:
    command = [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={nproc}", "--max-restarts=1",
               str(WORKER), f"out={out}", "hang=1@0"]
    run = Run(command, out)
    first = run.wait_for(lambda: _first_step(out, 0, nproc), 120)
    run.wait_for(lambda: _stamp(out / "hang.a0.r1"), 60)
    restarted = run.wait_for(lambda: _stamp(out / "first_step.a1.r0"), wait)  # expected: never
    run.end(0)
    return {"launch": first - run.started if first else None, "detect": None if not restarted else -1.0,
            "recover": None, "total": None}


def _fmt(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:.2f} s"


def measure(nproc: int, repeat: int, tmp: Path, nvidia: Path | None = None) -> list[tuple[str, ...]]:
    """Table rows for ``nproc`` ranks: each launcher's medians over ``repeat`` runs, interleaved."""
    wait = TIMEOUT + 8.0
    results: dict[str, list[dict]] = {"torchrun": [], "ft_launcher": [], "ft_launcher --no-fork-server": []}
    if nvidia:
        results["NVIDIA ft_launcher"] = []
    for i in range(repeat):
        for name in results:
            out = tmp / f"n{nproc}_{name.replace(' ', '_')}_{i}"
            out.mkdir()
            if name == "torchrun":
                results[name].append(torchrun(out, nproc, wait))
            elif name == "NVIDIA ft_launcher":
                results[name].append(ft_launcher(out, nproc, fork=False, binary=nvidia))
            else:
                results[name].append(ft_launcher(out, nproc, fork="no-fork" not in name))
    median = {name: {key: _median([r[key] for r in runs]) for key in runs[0]} for name, runs in results.items()}
    base = median["torchrun"]["launch"]
    rows = []
    for name, m in median.items():
        ratio = f"{m['launch'] / base:.2f}x" if m["launch"] and base else "-"
        detect = _fmt(m["detect"], f"not detected in {wait:g} s") if name == "torchrun" else _fmt(m["detect"], "-")
        rows.append((str(nproc), name, _fmt(m["launch"], "-"), ratio, detect, _fmt(m["recover"], "-"),
                     _fmt(m["total"], "-")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, nargs="+", default=[2], help="ranks per run, one table block each")
    parser.add_argument("--repeat", type=int, default=2, help="runs per launcher (median reported)")
    parser.add_argument("--nvidia", type=Path, default=None, metavar="FT_LAUNCHER",
                        help="NVIDIA's ft_launcher (nvidia-resiliency-ext), e.g. from another venv: adds its rows")
    options = parser.parse_args()
    rows = [("ranks", "launcher", "launch → 1st step", "vs torchrun", f"hang → detection (timeout {TIMEOUT:g} s)",
             "detection → next 1st step", "total")]
    with tempfile.TemporaryDirectory(prefix="recovery_bench_") as tmp:
        for nproc in options.nproc:
            rows += measure(nproc, options.repeat, Path(tmp), options.nvidia)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"recovery benchmark: gloo, CPU, {os.cpu_count()} cores; median of {options.repeat} run(s) each")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if len(present) == len(values) and present else None


if __name__ == "__main__":
    main()
