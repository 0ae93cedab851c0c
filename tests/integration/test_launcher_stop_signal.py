"""ft_launcher --stop-signal=SIGUSR1: a real launcher (2 ranks on gloo) stopped by SIGUSR1 exits 75 with a
checkpoint, whether the signal reaches the launcher alone or, as SLURM delivers a job step's signal,
every process of the job (launcher, fork server, ranks)."""

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
from ft_helpers.train_jobs import descendants

from train.checkpoint.store import CheckpointStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FT_LAUNCHER = [str(Path(sys.executable).parent / "ft_launcher"), "--standalone", "--nproc-per-node=2",
               "--stop-signal=SIGUSR1"]
# slow: 20 ms before each step, so the job is surely still running when the signal comes.
RUN = ["trainer.max_steps=400", "trainer.log_every=10", "trainer.eval_every=0", "checkpoint.every=1000",
       "trainer.progress=false", "fault=slow", "fault.seconds=0.02"]


def start(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PULSETRAIN_FT_ENDPOINT", None)
    return subprocess.Popen([*FT_LAUNCHER, "train.py", *RUN, f"hydra.run.dir={run_dir}"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def kill_all(proc: subprocess.Popen) -> None:
    """The launcher and everything it started (workers lead their own process groups), if still running."""
    if proc.poll() is None:
        for pid in descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher's own group (it leads a new session)
        proc.wait(10)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_all(proc)
        out, _ = proc.communicate()
        pytest.fail(f"job did not end within {timeout} s:\n{out[-4000:]}")
    return proc.returncode, out


def wait_for_step(proc: subprocess.Popen, run_dir: Path, step: int, timeout: float = 60) -> None:
    """Until metrics.jsonl shows a logged step >= ``step`` (evidence of training, not a fixed wait)."""
    path = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and any(json.loads(line).get("step", 0) >= step for line in path.read_text().splitlines()):
            return
        time.sleep(0.05)
    kill_all(proc)
    pytest.fail(f"no step {step} within {timeout} s:\n{proc.communicate()[0][-4000:]}")


def saved_step(run_dir: Path) -> int:
    newest = CheckpointStore(run_dir / "checkpoints").checkpoints()[-1]
    return torch.load(newest.path, weights_only=True)["step"]


@pytest.mark.parametrize("everyone", [False, True], ids=["launcher_only", "every_process_as_slurm_does"])
def test_sigusr1_stops_cleanly_with_a_checkpoint(tmp_path, everyone):
    proc = start(tmp_path)
    try:
        wait_for_step(proc, tmp_path, 20)
        targets = [proc.pid, *descendants(proc.pid)] if everyone else [proc.pid]
        assert len(targets) >= (4 if everyone else 1)  # launcher, fork server, two ranks
        for pid in targets:
            os.kill(pid, signal.SIGUSR1)
        code, out = finish(proc, 60)
    finally:
        kill_all(proc)
    assert code == 75, out[-4000:]
    assert "SIGUSR1 received: workers stopped cleanly" in out
    assert 20 <= saved_step(tmp_path) < 400  # saved at the agreed stop, not at the end


def test_a_repeated_sigusr1_is_ignored_while_the_workers_stop(tmp_path):
    """A scheduler may warn twice; unlike a second Ctrl-C, that must not kill the ranks mid-save."""
    proc = start(tmp_path)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_for_step(proc, tmp_path, 20)
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while not any("forwarding SIGTERM" in line for line in list(lines)) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGUSR1)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail("the launcher did not end within 60 s of the second SIGUSR1; its output:\n"
                        + "".join(list(lines))[-6000:])
        reader.join(10)
    finally:
        kill_all(proc)
    out = "".join(lines)
    assert code == 75, out[-4000:]
    assert "SIGUSR1 again: already stopping" in out
    assert 20 <= saved_step(tmp_path) < 400


def test_two_sigints_10_ms_apart_are_one_stop_request_with_a_checkpoint(tmp_path):
    """GNU timeout and some schedulers signal the launcher and then its process group: one Ctrl-C, twice."""
    proc = start(tmp_path)
    try:
        wait_for_step(proc, tmp_path, 20)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)  # the gap under test, not a synchronisation
        proc.send_signal(signal.SIGINT)
        code, out = finish(proc, 60)
    finally:
        kill_all(proc)
    assert code == 75, out[-4000:]
    assert "the same stop request" in out and "killing the workers now" not in out, out[-4000:]
    assert "SIGINT received: workers stopped cleanly" in out
    assert 20 <= saved_step(tmp_path) < 400  # the stop checkpoint, written at the agreed stop
