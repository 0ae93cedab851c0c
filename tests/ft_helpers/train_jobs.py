"""Real training jobs for the integration tests: start ft_launcher/torchrun on train.py, read their
output without blocking them, and compare what they leave behind (checkpoints, weights, metrics)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from ft_helpers.paths import REPO
from ft_helpers.process_tree import alive, descendants  # noqa: F401 (the tests import them from here)
from train.checkpoint.store import CheckpointStore

BIN = Path(sys.executable).parent
FT_LAUNCHER = [str(BIN / "ft_launcher"), "--standalone", "--nproc-per-node=2"]
TORCHRUN = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2"]
# One schedule for every run, so final weights can be compared bit for bit.
MAX_STEPS = 400
RUN = [f"trainer.max_steps={MAX_STEPS}", "trainer.log_every=10", "trainer.eval_every=100",
       "checkpoint.every=50", "trainer.progress=false"]
FAST_DETECTION = ["fault_tolerance=demo"]  # 2 s heartbeat timeout


def launch(cmd: list[str], run_dir: Path, *overrides: str, timeout: float = 90) -> tuple[int, str]:
    """Run a job to its end (bounded); returns (exit code, combined output)."""
    proc = start(cmd, run_dir, *overrides)
    return finish(proc, timeout)


# Set by a launcher for its workers: a test process that inherited them must not pass them on.
_LAUNCHER_ENV = ("PULSETRAIN_FT_ENDPOINT", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                 "TORCHELASTIC_RESTART_COUNT")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_ENV}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_to_end(argv: list[str], env_extra: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str]:
    """Run any command from the repository root to its end (bounded); returns (exit code, output)."""
    proc = subprocess.Popen(argv, cwd=REPO, env=clean_env(env_extra), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return finish(proc, timeout)


def start(cmd: list[str], run_dir: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*cmd, "train.py", *RUN, *overrides, f"hydra.run.dir={run_dir}"], cwd=REPO, env=clean_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and every worker it started
        out, _ = proc.communicate()
        pytest.fail(f"job did not end within {timeout} s:\n{out[-4000:]}")
    return proc.returncode, out


def final_checkpoint(run_dir: Path) -> dict:
    newest = CheckpointStore(run_dir / "checkpoints").checkpoints()[-1]
    state = torch.load(newest.path, weights_only=True)
    assert newest.step == state["step"]
    return state


def assert_same_weights(run_dir: Path, reference: Path) -> None:
    got, want = final_checkpoint(run_dir), final_checkpoint(reference)
    assert got["step"] == want["step"] == MAX_STEPS
    assert all(torch.equal(got["model"][k], want["model"][k]) for k in want["model"])


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


class Output:
    """Reads a job's combined output on a thread, so a test can wait for a line without stalling the job."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines, self.closed = proc, [], False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line containing ``text``; fails when the output ends or ``timeout`` passes first."""
        def found() -> str | None:
            return next((line for line in self.lines if text in line), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self.closed, timeout)
            line = found()
        if line is None:
            pytest.fail(f"no line with {text!r} within {timeout} s:\n{self.text()[-4000:]}")
        return line

    def text(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def finish(self, timeout: float) -> tuple[int, str]:
        """Wait for the job to end (bounded, killed otherwise); returns (exit code, output)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self._thread.join(10)
            pytest.fail(f"job did not end within {timeout} s:\n{self.text()[-4000:]}")
        self._thread.join(10)
        return self.proc.returncode, self.text()


def wait_until(predicate, timeout: float, what: str):
    """Poll ``predicate`` (a file appearing, a step logged) until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")
