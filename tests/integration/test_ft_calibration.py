"""Timeout calibration across real gloo process groups of 2 and 4 ranks, enforced by the monitor."""

from __future__ import annotations

import pytest
from ft_helpers.processes import RankProcesses

from ft import FaultToleranceConfig, RankMonitor

pytestmark = pytest.mark.integration
FACTOR = 2.0
INTERVAL = 0.1
FIRST_DELAY = 0.7  # rank 0 waits this long after init before its first heartbeat
LONG_GAP = 0.7  # the last rank makes one gap this long
SLACK = 0.4


@pytest.mark.parametrize("world", [2, 4])
def test_calibration_agrees_on_every_rank_and_the_monitor_enforces_it(world, tmp_path):
    # Hang detection off until calibrated: only calculated timeouts can fire here.
    config = FaultToleranceConfig(
        initial_rank_heartbeat_timeout=None,
        rank_heartbeat_timeout=None,
        safety_factor=FACTOR,
        calculated_timeout_floor=1.0,
        workload_check_interval=INTERVAL,
    )
    monitor = RankMonitor(config, stack_dir=tmp_path)
    monitor.start()
    procs = None
    try:
        procs = RankProcesses(world, monitor.worker_env(), tmp_path)
        assert [r["rank"] for r in procs.call_all(cmd="pg", timeout=120)] == list(range(world))
        procs.call_all(cmd="init")

        # Two-heartbeat rule, decided collectively: rank 0 has three, the others one.
        procs.call(0, cmd="beat", n=3)
        for rank in range(1, world):
            procs.call(rank, cmd="beat", n=1)
        assert [r["set"] for r in procs.call_all(cmd="calibrate", skip=True)] == [False] * world
        failures = procs.call_all(cmd="calibrate", check=False)
        assert [f["type"] for f in failures] == ["RankMonitorClientError"] * world
        assert all("at least two heartbeats" in f["error"] for f in failures)

        # Measured: the longest first-heartbeat wait (rank 0, new client) and the longest gap (last rank).
        procs.call(0, cmd="shutdown")
        procs.call(0, cmd="new_client")
        procs.call(0, cmd="init")
        procs.call(0, cmd="beat", n=3, pause=FIRST_DELAY / 2)  # some gap on rank 0 too, shorter
        for rank in range(1, world - 1):
            procs.call(rank, cmd="beat", n=2, every=0.01)
        procs.call(world - 1, cmd="beat", n=2, pause=LONG_GAP)
        results = procs.call_all(cmd="calibrate")
        assert all(r["set"] for r in results)
        timeouts = results[0]["timeouts"]
        assert all(r["timeouts"] == timeouts for r in results), results
        assert timeouts["were_calculated"] and timeouts["are_valid"]
        assert LONG_GAP * FACTOR <= timeouts["subsequent"] < (LONG_GAP + SLACK) * FACTOR
        # Rank 0's first heartbeat came FIRST_DELAY/2 + the command round trip after init; the
        # other ranks' came later still after their (older) init, so the max is theirs: >= floor.
        assert timeouts["initial"] >= 1.0
        states = procs.call_all(cmd="state")
        assert all(state == states[0] for state in states)
        assert states[0]["calculated"] == {"initial": timeouts["initial"], "subsequent": timeouts["subsequent"]}

        # Applied by the monitor at once, per rank: every rank now idles, and each is reported with
        # the calculated per-step timeout.
        events = sorted((monitor.events.get(timeout=10) for _ in range(world)), key=lambda e: e.rank)
        assert [e.rank for e in events] == list(range(world))
        for event in events:
            assert (event.kind, event.timeout_source) == ("heartbeat_timeout", "calculated")
            assert event.timeout == timeouts["subsequent"]
            assert timeouts["subsequent"] < event.gap <= timeouts["subsequent"] + INTERVAL + SLACK

        # Merge rule: never lower. Rank 0 alone loads larger calculated values; after the next
        # calibration every rank holds them (max of previous values across ranks).
        bigger = dict(states[0], calculated={"initial": 300.0, "subsequent": 400.0})
        procs.call(0, cmd="load", state=bigger)
        procs.call_all(cmd="beat", n=2)
        merged = procs.call_all(cmd="calibrate")
        assert all(
            (m["timeouts"]["initial"], m["timeouts"]["subsequent"]) == (300.0, 400.0) for m in merged
        ), merged
        # And measured values above the previous ones win.
        smaller = dict(states[0], calculated={"initial": 1.0, "subsequent": 1.0})
        procs.call_all(cmd="shutdown")
        procs.call_all(cmd="new_client")
        procs.call_all(cmd="load", state=smaller)
        procs.call_all(cmd="init")
        procs.call_all(cmd="beat", n=2, pause=LONG_GAP)
        grown = procs.call_all(cmd="calibrate")
        assert all(g["timeouts"] == grown[0]["timeouts"] for g in grown)
        assert grown[0]["timeouts"]["subsequent"] >= LONG_GAP * FACTOR > 1.0
    finally:
        if procs is not None:
            procs.close()
        monitor.stop()
