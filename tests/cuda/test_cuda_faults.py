"""Faults on CUDA ranks: a rank stuck inside a collective, and GPU memory across a restart.

The collective case runs 2 ranks: NCCL with a GPU each where there are two GPUs; on one GPU (NCCL
refuses two ranks on one device) gloo on CUDA tensors, the stuck rank's stream held by a kernel that
never ends, standing in for an NCCL kernel waiting for its peer.
"""

from __future__ import annotations

import re

import pytest
from gpu_jobs import DETECTED, GPUS, alive, worker_job

pytestmark = [pytest.mark.cuda, pytest.mark.timeout(150)]

GROUP_TIMEOUT_S = 60  # the worker's process-group timeout (NCCL's watchdog acts after it)
GIB = 2**30


def test_a_rank_stuck_in_a_collective_is_found_before_the_group_timeout(tmp_path, jobs, record):
    out = tmp_path / "out"
    job = worker_job(jobs, out, 2, "mode=collective")
    entered = job.wait_record("entered.a0.r0", 90)
    found, line = job.wait_for(DETECTED, 30)
    restarted = job.wait_record("first_step.a1.r0", 90)
    code, text = job.finish(60)
    assert code == 0, text[-4000:]
    assert re.search(r"\brank 0\b", line), f"the rank inside the collective is the one named: {line}"
    assert not (out / "left.a0.r0").exists(), "the collective its peer never entered completed"
    detect = found - entered["time"]
    assert detect < GROUP_TIMEOUT_S / 4, f"found {detect:.1f} s after entering; the group timeout is {GROUP_TIMEOUT_S} s"
    assert "Watchdog caught collective operation timeout" not in text
    recover = restarted["time"] - found
    assert recover < 60, f"the restarted ranks' first collective came {recover:.1f} s after detection"
    setup = "2 ranks, NCCL, 2 GPUs" if GPUS >= 2 else "2 ranks on 1 GPU: gloo on CUDA tensors + a spinning kernel"
    record(setup=setup, backend=entered["backend"], entered_to_detection_s=round(detect, 2),
           detection_to_next_first_step_s=round(recover, 2))


def test_gpu_memory_is_released_before_the_next_attempt(tmp_path, jobs, record):
    out = tmp_path / "out"
    job = worker_job(jobs, out, 1, "mode=memory", "fraction=0.6")
    first = job.wait_record("memory.a0.r0", 90)
    job.wait_for(DETECTED, 30)
    second = job.wait_record("memory.a1.r0", 90)
    code, text = job.finish(60)
    assert code == 0, text[-4000:]
    assert not alive(first["pid"])
    # Attempt 1 saw (about) the free memory attempt 0 saw before its block, and took 0.6 of the card.
    assert second["free_at_start"] >= first["free_at_start"] - GIB, (first, second)
    assert second["allocated"] >= 0.6 * second["total"] - 1
    record(setup="1 rank", held_by_attempt_0_gib=round(first["allocated"] / GIB, 1),
           free_at_attempt_1_start_gib=round(second["free_at_start"] / GIB, 1),
           free_at_attempt_0_start_gib=round(first["free_at_start"] / GIB, 1), total_gib=round(second["total"] / GIB, 1))
