"""ft_launcher jobs for the CUDA tests: started from the repository root, output stamped as it arrives,
every wait bounded, the launcher and every worker it started ended when the test ends."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
from ft_helpers.paths import REPO
from ft_helpers.process_tree import alive, descendants
from ft_helpers.train_jobs import BIN, clean_env

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
FT_LAUNCHER = [str(BIN / "ft_launcher"), "--standalone"]
WORKERS = Path(__file__).with_name("workers")
CUDA_WORKER = str(WORKERS / "cuda_worker.py")
DETERMINISTIC_TRAIN = str(WORKERS / "deterministic_train.py")
# For the worker jobs: the first heartbeat may take a CUDA start; after it, a 2 s gap is a hang.
FAST_FT = ["--ft-initial-rank-heartbeat-timeout=60", "--ft-rank-heartbeat-timeout=2",
           "--ft-workload-check-interval=0.1", "--ft-rank-termination-grace=1"]
# train.py on one CUDA rank, short and quiet (no validation, no text samples).
TRAIN_CUDA = ["trainer.device=cuda", "trainer.progress=false", "trainer.eval_every=0", "trainer.log_every=10"]
DETECTED = "sent no heartbeat"
# What torch says when a NCCL group does not know its device (the device was not set/bound before init).
UNBOUND_DEVICE = ("Guessing device ID based on global rank", "devices used by this process are currently unknown",
                  "using the device under current context")


class Job:
    """One ft_launcher process; ``lines`` holds (arrival time, line) of its combined output."""

    def __init__(self, argv: list[str], out: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.out = out
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._closed = False
        self.started = time.time()
        self.proc = subprocess.Popen(argv, cwd=REPO, env=clean_env(env), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append((time.time(), line))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def text(self) -> str:
        with self._cond:
            return "".join(line for _, line in self.lines)

    def wait_for(self, text: str, timeout: float) -> tuple[float, str]:
        """(arrival time, line) of the first line containing ``text``; fails if the output ends or time runs out."""
        def found():
            return next(((t, line) for t, line in self.lines if text in line), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self._closed, timeout)
            hit = found()
        if hit is None:
            pytest.fail(f"no line with {text!r} within {timeout} s:\n{self.text()[-4000:]}")
        return hit

    def wait_record(self, name: str, timeout: float) -> dict:
        """A JSON record a worker writes into ``out`` (atomically); fails once the job has ended without it."""
        assert self.out is not None
        path, deadline = self.out / name, time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = self.proc.poll() is not None
            if path.exists():
                return json.loads(path.read_text())
            if ended:
                break
            time.sleep(0.02)
        pytest.fail(f"no {name} within {timeout} s (job ended: {self.proc.poll() is not None}):\n{self.text()[-4000:]}")

    def finish(self, timeout: float) -> tuple[int, str]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail(f"job did not end within {timeout} s:\n{self.text()[-4000:]}")
        self._thread.join(10)
        return self.proc.returncode, self.text()

    def close(self) -> None:
        """End the launcher's session and every worker it started (workers have sessions of their own)."""
        below = descendants(self.proc.pid) if self.proc.poll() is None else set()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        pids = set(below)
        if self.out is not None:
            pids |= {int(p.read_text()) for p in self.out.glob("pid.*") if p.read_text().strip().isdigit()}
        for pid in pids:
            if alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._thread.join(10)
        if self.proc.stdout:
            self.proc.stdout.close()


def worker_job(jobs, out: Path, nproc: int, *args: str, fork_server: bool = True,
               env: dict[str, str] | None = None) -> Job:
    out.mkdir(parents=True, exist_ok=True)
    flags = [] if fork_server else ["--no-fork-server"]
    return jobs([*FT_LAUNCHER, f"--nproc-per-node={nproc}", "--max-restarts=1", *FAST_FT, *flags,
                 CUDA_WORKER, f"out={out}", *args], out, env)


def train_job(jobs, run_dir: Path, *overrides: str, nproc: int = 1, launcher_flags: tuple[str, ...] = (),
              script: str = "train.py", env: dict[str, str] | None = None) -> Job:
    return jobs([*FT_LAUNCHER, f"--nproc-per-node={nproc}", *launcher_flags, script, *TRAIN_CUDA, *overrides,
                 f"hydra.run.dir={run_dir}"], None, env)


def run_text(output: str, run_dir: Path) -> str:
    """The job's output and every log file train.py left in its run directory."""
    return output + "".join(p.read_text(errors="replace") for p in sorted(run_dir.glob("*.log")))


def steps_per_s(output: str, run_dir: Path) -> float:
    """The rank-0 throughput train.py reports at the end of an attempt ("... N steps/s over ...")."""
    found = re.findall(r"([0-9.]+) steps/s", run_text(output, run_dir))
    if not found:
        pytest.fail(f"no 'steps/s' in the job's output or logs:\n{output[-3000:]}")
    return float(found[-1])
