"""Synchronized SIGTERM on a real gloo group: a signal to one rank stops every rank after the same step."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from ft_helpers.processes import RankProcesses

pytestmark = pytest.mark.integration
WORKER = Path(__file__).resolve().parents[1] / "ft_helpers" / "preemption_worker.py"


def test_sigterm_to_one_rank_stops_all_ranks_after_the_same_step(tmp_path):
    with RankProcesses(2, None, tmp_path, script=WORKER) as procs:
        for rank in range(2):
            assert json.loads(procs.line(rank, timeout=120)) == {"ready": True}
        os.kill(procs.pid(1), signal.SIGTERM)
        results = [json.loads(procs.line(rank, timeout=60)) for rank in range(2)]
        assert [procs.wait(rank) for rank in range(2)] == [0, 0]
    assert results[0]["stopped_after"] == results[1]["stopped_after"] < 3000
    assert (results[0]["requested"], results[1]["requested"]) == (False, True)
    # Seen before the call at step k: that call's all-reduce (or the one before) carries it, and
    # its result is returned at the next call, so the stop comes at step k or k + 1.
    assert 0 <= results[1]["stopped_after"] - results[1]["seen_at"] <= 1
    assert all(r["handler_restored"] for r in results)
