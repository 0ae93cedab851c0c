"""Time lost counts only thrown-away work: a crashed attempt loses what came after its last checkpoint, not all of it."""

from __future__ import annotations

import json

import pytest
from ft_helpers.train_jobs import BIN, launch, metrics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
CHECK_INTERVAL = 0.25  # fault_tolerance=demo's workload_check_interval: how late the monitor may see a save


def test_a_killed_rank_loses_the_steps_since_its_last_checkpoint_and_the_restart_not_its_whole_attempt(tmp_path):
    code, out = launch([str(BIN / "ft_launcher"), "--standalone", "--nproc-per-node=1", "--max-restarts=1"], tmp_path,
                       "trainer.max_steps=150", "checkpoint.every=100", "fault=kill", "fault.rank=0",
                       "fault.step=140", "fault_tolerance=demo", "data.num_workers=0", timeout=150)
    assert code == 0, out[-4000:]
    (launch_line,) = [json.loads(line) for line in (tmp_path / "ft_launches.jsonl").read_text().splitlines()]
    crashed, resumed = launch_line["attempts"]
    assert crashed["outcome"] == "failed" and crashed["cause"] == "rank 0 crashed (signal 9)", crashed
    (saved,) = [m for m in metrics(tmp_path) if m.get("event") == "checkpoint" and m["attempt"] == 0]
    saved_at = saved["time"] - launch_line["started_at"]  # seconds since the launch, as the attempts' times
    assert abs(crashed["checkpointed"] - saved_at) < 1.0, (crashed, saved_at)
    lost = launch_line["time_lost"]
    assert lost < crashed["ended"] - crashed["started"], launch_line  # not the whole failed attempt
    assert lost >= crashed["ended"] - saved_at - CHECK_INTERVAL, launch_line  # the steps since the save at least
    assert lost == pytest.approx(resumed["first_heartbeat"] - crashed["checkpointed"], abs=0.002), launch_line
    assert f"{lost:.1f} s" in out  # the summary table shows the same number
