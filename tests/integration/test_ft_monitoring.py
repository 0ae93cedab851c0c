"""A RankMonitor in this process watching real rank processes: hangs, first heartbeats, drops, shutdown.

These ranks do not import torch (no process group needed), so each starts in a fraction of a second.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import resource
import signal
import socket
import time

import pytest
from ft_helpers.processes import RankProcesses

from ft import ENDPOINT_ENV, FaultToleranceConfig, RankMonitor
from ft.shared.wire import PROTOCOL_VERSION

pytestmark = pytest.mark.integration
INTERVAL = 0.1
# Scheduling noise on a busy 2-core machine, on top of timeout + check interval.
SLACK = 0.25


@pytest.fixture
def start_monitor(tmp_path):
    monitors: list[RankMonitor] = []

    def start(**values) -> RankMonitor:
        sources = values.pop("sources", None)
        config = FaultToleranceConfig.from_mapping({"workload_check_interval": INTERVAL, **values})
        monitor = RankMonitor(config, stack_dir=tmp_path / f"stacks{len(monitors)}", sources=sources)
        monitors.append(monitor)
        monitor.start()
        return monitor

    try:
        yield start
    finally:
        for monitor in monitors:
            monitor.stop()


@pytest.fixture
def ranks(tmp_path):
    started: list[RankProcesses] = []

    def launch(world: int, monitor: RankMonitor | None, **kwargs) -> RankProcesses:
        procs = RankProcesses(world, monitor.worker_env() if monitor else None, tmp_path, **kwargs)
        started.append(procs)
        return procs

    try:
        yield launch
    finally:
        for procs in started:
            procs.close()


def no_event(monitor: RankMonitor, within: float) -> None:
    try:
        event = monitor.events.get(timeout=within)
    except queue.Empty:
        return
    raise AssertionError(f"unexpected event: {event.describe()}")


def test_a_hung_rank_is_reported_within_timeout_plus_interval_and_a_beating_one_is_not(start_monitor, ranks):
    monitor = start_monitor(
        initial_rank_heartbeat_timeout=20.0,
        rank_heartbeat_timeout=1.0,
        sources={"rank_heartbeat_timeout": "--ft-rank-heartbeat-timeout"},
    )
    procs = ranks(2, monitor)
    procs.call_all(cmd="init")
    procs.send(0, cmd="beat_for", seconds=2.5, every=0.05)  # keeps beating well past the timeout
    procs.call(1, cmd="beat", n=2)
    last_beat = time.monotonic()  # rank 1 now waits for a command: hung, from the monitor's view
    event = monitor.events.get(timeout=5)
    detected = time.monotonic()
    assert (event.kind, event.rank, event.local_rank, event.pid) == ("heartbeat_timeout", 1, 1, procs.pid(1))
    assert event.timeout == 1.0 and event.timeout_source == "--ft-rank-heartbeat-timeout"
    assert 1.0 < event.gap <= 1.0 + INTERVAL + SLACK
    # The stack capture may add up to 0.5 s between detection and the report.
    assert detected - last_beat <= 1.0 + INTERVAL + SLACK + 0.5
    assert event.stack_file is not None and "wait_for_command" in event.stack_file.read_text()
    assert "--ft-rank-heartbeat-timeout" in event.describe() and f"pid {procs.pid(1)}" in event.describe()
    procs.reply(0)  # rank 0 has beaten for 2.5 s in all
    assert monitor.events.empty(), "the heartbeating rank was reported"
    procs.call(0, cmd="shutdown")
    # Rank 1 was reported once; it is no longer watched, so nothing more comes for it.
    no_event(monitor, 1.0 + 2 * INTERVAL)


def test_ranks_beating_back_to_back_under_a_10ms_check_are_never_reported(start_monitor, ranks):
    # The monitor reads each slot 100 times a second while both ranks overwrite it as fast as they
    # can: a read that mixed two writes (or saw time 0) would report a gap of the machine's uptime.
    monitor = start_monitor(initial_rank_heartbeat_timeout=5.0, rank_heartbeat_timeout=1.0,
                            workload_check_interval=0.01)
    procs = ranks(2, monitor)
    procs.call_all(cmd="init")
    beats = procs.call_all(cmd="beat_for", seconds=20.0, every=0)
    assert monitor.events.empty(), f"false hang: {monitor.events.get_nowait().describe()}"
    assert min(beats) > 100_000  # really back to back
    procs.call_all(cmd="shutdown")
    no_event(monitor, 0.2)


def test_no_first_heartbeat_is_an_initial_timeout(start_monitor, ranks):
    monitor = start_monitor(initial_rank_heartbeat_timeout=1.0, rank_heartbeat_timeout=0.3)
    procs = ranks(1, monitor)
    procs.call(0, cmd="init")
    started = time.monotonic()
    event = monitor.events.get(timeout=5)
    assert (event.kind, event.rank, event.timeout, event.timeout_source) == ("initial_timeout", 0, 1.0, "config")
    assert 1.0 < event.gap <= 1.0 + INTERVAL + SLACK
    assert time.monotonic() - started <= 1.0 + INTERVAL + SLACK + 0.5


def test_null_timeouts_never_fire(start_monitor, ranks):
    monitor = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=None)
    procs = ranks(2, monitor)
    procs.call_all(cmd="init")
    procs.call(0, cmd="beat", n=1)  # rank 0 then stops beating, rank 1 never starts
    no_event(monitor, 1.5)
    procs.procs[1].kill()  # the monitor is still working: a drop is reported
    assert monitor.events.get(timeout=5).kind == "disconnected"


def test_shutdown_stops_monitoring_and_a_dropped_connection_is_reported_at_once(start_monitor, ranks):
    monitor = start_monitor(initial_rank_heartbeat_timeout=0.5, rank_heartbeat_timeout=0.5)
    procs = ranks(2, monitor)
    procs.call_all(cmd="init")
    procs.call_all(cmd="beat", n=1)
    procs.call(0, cmd="shutdown")
    procs.send(0, cmd="exit", code=0)  # closes its connection after shutdown: nothing to report
    assert procs.wait(0) == 0
    procs.send(1, cmd="exit", code=3)  # dies without shutdown
    procs.wait(1)
    died = time.monotonic()
    event = monitor.events.get(timeout=5)
    assert time.monotonic() - died < 0.5  # at once, not after the 0.5 s timeout + interval
    assert (event.kind, event.rank, event.pid, event.timeout) == ("disconnected", 1, procs.pid(1), None)
    no_event(monitor, 0.5 + 3 * INTERVAL)


def test_calculated_timeouts_round_trip_before_and_after_init(start_monitor, ranks):
    monitor = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=None)
    procs = ranks(2, monitor)
    unmonitored = ranks(1, None)
    unmonitored.call(0, cmd="init")
    unmonitored.call(0, cmd="beat", n=2, pause=0.2)
    result = unmonitored.call(0, cmd="calibrate")
    assert result["set"] and result["timeouts"]["were_calculated"]
    state = unmonitored.call(0, cmd="state")
    floor = FaultToleranceConfig().calculated_timeout_floor  # unmonitored: the schema's defaults apply
    assert state["calculated"] == {"initial": floor, "subsequent": floor}
    # Smaller values, as a run with a lower floor would save them, keep this test short.
    state["calculated"] = {"initial": 1.0, "subsequent": 1.1}
    expected = (1.0, 1.1)

    # Before init: the loaded values are sent with init and enforced from the start.
    assert procs.call(0, cmd="load", state=state)["were_calculated"]
    reply = procs.call(0, cmd="init")
    assert (reply["timeouts"]["initial"], reply["timeouts"]["subsequent"]) == expected
    # After init: enforced at once, replacing the configured null timeouts.
    assert procs.call(1, cmd="init")["timeouts"]["initial"] is None
    procs.call(1, cmd="beat", n=1)
    procs.call(1, cmd="load", state=state)
    events = {event.rank: event for event in (monitor.events.get(timeout=5), monitor.events.get(timeout=5))}
    assert (events[0].kind, events[0].timeout, events[0].timeout_source) == ("initial_timeout", expected[0], "calculated")
    assert (events[1].kind, events[1].timeout, events[1].timeout_source) == (
        "heartbeat_timeout",
        expected[1],
        "calculated",
    )
    assert procs.call(0, cmd="state") == procs.call(1, cmd="state") == state
    procs.send(0, cmd="load", state={"version": 7})
    garbage = procs.reply(0, check=False)
    assert garbage["ok"] is False and garbage["type"] == "RankMonitorStateError"
    assert "not a heartbeat-timeouts state dict" in garbage["error"]


def test_two_monitors_on_one_machine_never_mix_ranks(start_monitor, ranks):
    first = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=0.5)
    second = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=None)
    a = ranks(1, first)
    b = ranks(1, second)
    a.call(0, cmd="init")
    b.call(0, cmd="init")
    a.call(0, cmd="beat", n=1)
    b.call(0, cmd="beat", n=1)
    event = first.events.get(timeout=5)  # a hangs: only its own monitor says so
    assert (event.kind, event.pid) == ("heartbeat_timeout", a.pid(0))
    b.procs[0].send_signal(signal.SIGKILL)
    event = second.events.get(timeout=5)
    assert (event.kind, event.pid) == ("disconnected", b.pid(0))
    assert first.events.empty() and second.events.empty()


def test_a_rank_notices_when_its_monitor_goes_away(start_monitor, ranks):
    monitor = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=None)
    procs = ranks(1, monitor)
    procs.call(0, cmd="init")
    monitor.stop()
    # The liveness peek runs at most once a second; beating for 1.3 s must hit it.
    procs.send(0, cmd="beat_for", seconds=1.3, every=0.01)
    reply = procs.reply(0, check=False)
    assert reply["ok"] is False and reply["type"] == "RankMonitorClientError"
    assert "closed this rank's connection" in reply["error"]


def test_the_monitor_survives_emfile_on_accept_keeps_checking_and_logs_it_once(start_monitor, ranks, caplog):
    monitor = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=1.0)
    procs = ranks(1, monitor)
    procs.call(0, cmd="init")
    newcomer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # its fd exists before the limit
    newcomer.settimeout(10)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    caplog.set_level(logging.ERROR, logger="ft.monitor")
    try:
        # From here this process can open no file: the monitor's accept() fails with EMFILE for real.
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
        newcomer.connect(monitor.worker_env()[ENDPOINT_ENV])
        procs.call(0, cmd="beat", n=1)
        last_beat = time.monotonic()
        event = monitor.events.get(timeout=5)  # deadlines are still checked while accept() keeps failing
        detected = time.monotonic()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (event.kind, event.rank) == ("heartbeat_timeout", 0)
    assert detected - last_beat <= 1.0 + INTERVAL + SLACK + 0.5
    errors = [r for r in caplog.records if "serving connections" in r.getMessage()]
    assert len(errors) == 1 and "Too many open files" in errors[0].getMessage()
    # With descriptors back, the waiting connection is accepted and answered.
    message = {"type": "init", "protocol": PROTOCOL_VERSION, "rank": 1, "local_rank": 1, "pid": os.getpid()}
    newcomer.sendall((json.dumps(message) + "\n").encode())
    assert json.loads(newcomer.makefile().readline())["ok"] is True
    newcomer.close()


def test_a_section_left_open_is_reported_with_its_name_and_source(start_monitor, ranks):
    monitor = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=None,
                            rank_section_timeouts={"step": 0.5, "checkpoint": 1.0},
                            sources={"rank_section_timeouts": "--ft-rank-section-timeouts"})
    procs = ranks(1, monitor)
    procs.call(0, cmd="init")
    for _ in range(3):  # short steps inside their timeout: nothing to report
        procs.call(0, cmd="section", op="start", name="step", hold=0.2)
        procs.call(0, cmd="section", op="end", name="step")
    procs.call(0, cmd="section", op="start", name="checkpoint")
    opened = time.monotonic()
    event = monitor.events.get(timeout=5)
    assert (event.kind, event.section, event.timeout, event.timeout_source) == (
        "section_timeout", "checkpoint", 1.0, "--ft-rank-section-timeouts")
    assert 1.0 < event.gap <= 1.0 + INTERVAL + SLACK
    assert time.monotonic() - opened <= 1.0 + INTERVAL + SLACK + 0.5
    assert "in section 'checkpoint'" in event.describe() and "rank_section_timeouts.checkpoint is 1 s" in event.describe()
    assert "wait_for_command" in event.stack_file.read_text()


def test_out_of_section_time_is_watched_and_nested_sections_are_timed_separately(start_monitor, ranks):
    monitor = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=None,
                            rank_section_timeouts={"outer": None, "inner": 1.0}, rank_out_of_section_timeout=1.0)
    procs = ranks(1, monitor)
    procs.call(0, cmd="init")
    procs.call(0, cmd="section", op="start", name="outer")
    procs.call(0, cmd="section", op="start", name="inner", hold=0.3)
    procs.call(0, cmd="section", op="end", name="inner")
    no_event(monitor, 1.2)  # only "outer" is open, and it has no timeout
    procs.call(0, cmd="section", op="end_all")
    closed = time.monotonic()
    event = monitor.events.get(timeout=5)
    assert (event.kind, event.timeout, event.timeout_source) == ("out_of_section_timeout", 1.0, "config")
    assert time.monotonic() - closed <= 1.0 + INTERVAL + SLACK + 0.5


def test_calculated_section_timeouts_are_collective_enforced_and_saved(start_monitor, ranks):
    monitor = start_monitor(initial_rank_heartbeat_timeout=None, rank_heartbeat_timeout=None,
                            rank_section_timeouts={"step": None}, calculated_timeout_floor=1.0)
    procs = ranks(2, monitor)
    procs.call_all(cmd="pg")
    procs.call_all(cmd="init")
    procs.call_all(cmd="section", op="start", name="step", hold=0.1)
    procs.call_all(cmd="section", op="end", name="step")
    results = procs.call_all(cmd="calibrate_sections", selected=["step"], out=False)
    assert all(r["set"] for r in results) and results[0]["timeouts"] == results[1]["timeouts"]
    timeouts = results[0]["timeouts"]
    assert timeouts["calculated_sections"]["step"] == 1.0  # 0.1 s x 5 is below the floor, 1 s here
    assert not timeouts["is_out_of_section_calculated"] and timeouts["out_of_section"] is None
    state = procs.call(0, cmd="state")
    assert state["sections"] == {"step": 1.0} and state["out_of_section"] is None
    procs.call(1, cmd="section", op="start", name="step")  # and hangs in it
    event = monitor.events.get(timeout=5)
    assert (event.rank, event.kind, event.section, event.timeout_source) == (1, "section_timeout", "step", "calculated")
