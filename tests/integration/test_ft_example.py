"""examples/raw_heartbeats.py: unmonitored under plain python, then resumed by 2 monitored ranks."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys

import pytest
import torch
from ft_helpers.processes import ROOT, RankProcesses

from ft import ENDPOINT_ENV, FaultToleranceConfig, RankMonitor

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


def test_the_sections_example_calibrates_every_section_and_resumes_with_them(tmp_path):
    """examples/sections.py uses NVIDIA's section API calls; two monitored runs, the second resumes."""
    example = ROOT / "examples" / "sections.py"
    config = FaultToleranceConfig.from_mapping(
        {"initial_rank_heartbeat_timeout": None, "rank_heartbeat_timeout": None, "workload_check_interval": 0.1,
         "rank_section_timeouts": {"init": 60, "step": 10, "checkpoint": 30}, "rank_out_of_section_timeout": 30}
    )
    states = []
    for epochs in (2, 3):
        with RankMonitor(config, stack_dir=tmp_path) as monitor:
            args = ["--epochs", str(epochs), "--iters", "10", "--output-dir", str(tmp_path / "out")]
            with RankProcesses(2, monitor.worker_env(), tmp_path, script=example, args=args) as procs:
                assert [procs.wait(rank, timeout=120) for rank in range(2)] == [0, 0], procs.stderr(0)
            with pytest.raises(queue.Empty):
                monitor.events.get(timeout=0.3)  # no section ever ran over its timeout
        states.append(json.loads((tmp_path / "out" / "ft_state.json").read_text()))
    first, resumed = states
    assert set(first["sections"]) == {"step", "checkpoint"} and first["out_of_section"] >= 1.0
    assert set(resumed["sections"]) == {"init", "step", "checkpoint"}  # init: calculated after the resume
    assert all(resumed["sections"][name] >= first["sections"][name] for name in first["sections"])
    assert all(value >= 1.0 for value in resumed["sections"].values())  # never below the floor
    assert torch.load(tmp_path / "out" / "checkpoint.pt", weights_only=True)["progress"]["epoch"] == 3
