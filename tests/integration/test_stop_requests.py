"""A stop request always ends resumable: SIGTERM to ft_launcher while a rank is hung, and a second
signal during the graceful stop, both end with 75 and a relaunch that finishes from the checkpoints."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from ft_helpers.train_jobs import (
    FAST_DETECTION,
    FT_LAUNCHER,
    MAX_STEPS,
    Output,
    alive,
    assert_same_weights,
    descendants,
    launch,
    start,
    wait_until,
)

from launcher.job.stop_requests import SAME_REQUEST_WINDOW
from train.checkpoint.store import CheckpointStore

pytestmark = pytest.mark.integration
HEARTBEAT_TIMEOUT, GRACE = 2.0, 1.0  # fault_tolerance=demo
DETECTION_ALLOWANCE = 1.0  # design.md: a hung rank is found within its timeout plus one second
TEARDOWN = 2.0  # the launcher closing its monitor, rendezvous and fork server on a loaded 2-core machine


def checkpoint_steps(run_dir: Path) -> list[int]:
    return [c.step for c in CheckpointStore(run_dir / "checkpoints").checkpoints()]


def test_sigterm_while_a_rank_is_stopped_ends_75_within_its_timeout_and_the_relaunch_finishes(reference, tmp_path):
    run_dir = tmp_path / "run"
    # --term-timeout far above the bound below: only hang detection during the stop can end it in time.
    proc = start([*FT_LAUNCHER, "--term-timeout=600"], run_dir, *FAST_DETECTION)
    out = Output(proc)
    try:
        line = out.wait_for("attempt 0 started", 60)
        rank_pids = [int(p) for p in re.search(r"pids ([\d ]+)\)", line).group(1).split()]
        wait_until(lambda: checkpoint_steps(run_dir), 60, "the first checkpoint")
        os.kill(rank_pids[1], signal.SIGSTOP)  # the rank only; its loader workers keep running
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code, text = out.finish(60)
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 75, text[-6000:]
    assert took < HEARTBEAT_TIMEOUT + DETECTION_ALLOWANCE + GRACE + TEARDOWN, f"{took:.1f} s:\n{text[-4000:]}"
    assert "no heartbeat" in text and "hung during the graceful stop" in text, text[-4000:]
    kept = checkpoint_steps(run_dir)
    assert kept and kept[-1] >= 50
    code, text = launch(FT_LAUNCHER, run_dir, *FAST_DETECTION)
    assert code == 0, text[-4000:]
    assert f"resumed from step_{kept[-1]:08d}" in text
    assert checkpoint_steps(run_dir)[-1] == MAX_STEPS
    assert_same_weights(run_dir, reference)


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c twice", "sighup"])
def test_a_second_signal_during_the_stop_kills_at_once_and_still_ends_resumable(tmp_path, second):
    """The first signal asks the ranks to stop; a hung rank cannot. A second one, of any kind, means "now"."""
    run_dir = tmp_path / "run"
    proc = start([*FT_LAUNCHER, "--term-timeout=600"], run_dir, "fault=hang", "fault.step=60")
    out = Output(proc)
    try:
        out.wait_for("injected fault 'hang'", 60)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        first = time.monotonic()
        out.wait_for("forwarding SIGTERM", 30)
        if second == signal.SIGINT:  # the same signal within the window is the same request, not a second one
            time.sleep(max(0.0, first + SAME_REQUEST_WINDOW + 0.2 - time.monotonic()))
        os.killpg(proc.pid, second)
        code, text = out.finish(60)  # far below --term-timeout: only the escalation ends it in time
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 75, text[-6000:]
    assert f"{second.name} during the graceful stop: killing the workers now" in text
    assert f"SIGINT received: then {second.name}: the workers were killed at once" in text
    assert "stopped cleanly" not in text
    assert checkpoint_steps(run_dir) == [50]
    code, text = launch(FT_LAUNCHER, run_dir, "trainer.max_steps=80")
    assert code == 0, text[-4000:]
    assert "resumed from step_00000050" in text and checkpoint_steps(run_dir)[-1] == 80


def test_sigkill_to_the_launcher_leaves_no_rank_and_no_loader_worker(tmp_path):
    """Without the fork server (which kills its workers' groups when the launcher goes), each rank
    dies by its own parent-death signal, and each loader worker by the one the loop gives it."""
    run_dir = tmp_path / "run"
    proc = start([*FT_LAUNCHER, "--no-fork-server"], run_dir, *FAST_DETECTION, "data.num_workers=2")
    out = Output(proc)
    try:
        out.wait_for("attempt 0 started", 60)
        wait_until(lambda: checkpoint_steps(run_dir), 60, "the first checkpoint")
        everything = descendants(proc.pid)
        assert len(everything) >= 2 + 2 * 2, f"2 ranks, 2 loader workers each: {everything}"
        proc.kill()
        out.finish(30)
        # Parent-death signals end each generation the moment its parent dies: well within 3 s,
        # where torch's own loader watchdog would take up to 5 s more.
        wait_until(lambda: not any(alive(pid) for pid in everything), 3,
                   f"every process of the job ({sorted(everything)}) to vanish")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
