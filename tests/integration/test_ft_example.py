"""examples/raw_heartbeats.py: unmonitored under plain python, then resumed by 2 monitored ranks."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ft_helpers.processes import ROOT, RankProcesses  # noqa: E402

from ft import ENDPOINT_ENV, FaultToleranceConfig, RankMonitor  # noqa: E402

pytestmark = pytest.mark.integration
EXAMPLE = ROOT / "examples" / "raw_heartbeats.py"


def test_the_example_runs_unmonitored_then_resumes_monitored_with_its_timeouts(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    env = {k: v for k, v in os.environ.items() if k not in (ENDPOINT_ENV, "RANK", "WORLD_SIZE")}
    plain = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "30", "--checkpoint", str(checkpoint)],
        env=env | {"PYTHONPATH": str(ROOT)}, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr.count("hang detection is off") == 1
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["step"] == 30
    assert saved["ft"]["calculated"] is not None

    config = FaultToleranceConfig(
        initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=None, workload_check_interval=0.1
    )
    with RankMonitor(config, stack_dir=tmp_path) as monitor:
        args = ["--steps", "50", "--checkpoint", str(checkpoint), "--calibrate-after", "5"]
        with RankProcesses(2, monitor.worker_env(), tmp_path, script=EXAMPLE, args=args) as procs:
            assert [procs.wait(rank, timeout=120) for rank in range(2)] == [0, 0], procs.stderr(0)
        logs = [procs.stderr(rank) for rank in range(2)]
        with pytest.raises(queue.Empty):
            monitor.events.get(timeout=0.3)  # both ranks shut down cleanly
    for log in logs:
        assert "hang detection is off" not in log
        assert "monitored=True" in log and "were_calculated=True" in log.split("monitored=True")[1].splitlines()[0]
    resumed = torch.load(checkpoint, weights_only=True)
    assert resumed["step"] == 50
    assert resumed["ft"]["calculated"]["subsequent"] >= saved["ft"]["calculated"]["subsequent"]
