"""RankMonitor in this process, spoken to over raw sockets: protocol checks, isolation, reset, robustness."""

from __future__ import annotations

import json
import os
import queue
import socket
import stat

import pytest

from ft import ENDPOINT_ENV, FaultToleranceConfig, RankMonitor, RankMonitorClient, RankMonitorClientError
from ft.shared.wire import MAX_MESSAGE_BYTES, PROTOCOL_VERSION

CONFIG = FaultToleranceConfig(
    initial_rank_heartbeat_timeout=30.0, rank_heartbeat_timeout=30.0, workload_check_interval=0.05
)


@pytest.fixture
def monitor():
    monitor = RankMonitor(CONFIG)
    monitor.start()
    try:
        yield monitor
    finally:
        monitor.stop()


def connect(monitor: RankMonitor) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(monitor.worker_env()[ENDPOINT_ENV])
    return sock


def exchange(sock: socket.socket, raw: bytes) -> dict:
    sock.sendall(raw)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data)


def init_message(**changes) -> bytes:
    message = {"type": "init", "protocol": PROTOCOL_VERSION, "rank": 0, "local_rank": 0, "pid": os.getpid()}
    return (json.dumps(message | changes) + "\n").encode()


def closed_by_monitor(sock: socket.socket) -> bool:
    return sock.recv(1) == b""


def test_private_directory_socket_and_endpoint(monitor):
    path = monitor.worker_env()[ENDPOINT_ENV]
    directory = os.path.dirname(path)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_wrong_protocol_version_is_refused(monitor):
    with connect(monitor) as sock:
        reply = exchange(sock, init_message(protocol=PROTOCOL_VERSION + 1))
        assert reply["ok"] is False and "protocol version" in reply["error"]
        assert closed_by_monitor(sock)
    assert monitor.events.empty()


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"this is not json\n", "not a JSON line"),
        (b"[1,2,3]\n", "JSON object"),
        (b"x" * (MAX_MESSAGE_BYTES + 10), "longer than"),
        (b'{"type": "set_timeouts", "timeouts": {"initial": 1, "subsequent": 1}}\n', "before 'init'"),
        (b'{"type": "bogus"}\n', "before 'init'"),
    ],
)
def test_malformed_requests_are_refused_and_the_connection_closed(monitor, raw, words):
    with connect(monitor) as sock:
        reply = exchange(sock, raw)
        assert reply["ok"] is False and words in reply["error"]
        assert closed_by_monitor(sock)


def test_init_reply_carries_config_slot_and_files(monitor):
    with connect(monitor) as sock:
        reply = exchange(sock, init_message(rank=5, local_rank=1))
        assert reply["ok"] is True
        assert reply["config"] == CONFIG.to_dict()
        assert os.path.exists(reply["heartbeat_file"])
        assert "rank5" in reply["stack_file"]
        assert reply["timeouts"] == {"initial": 30.0, "subsequent": 30.0, "calculated": False}
        bad = exchange(sock, b'{"type": "set_timeouts", "timeouts": {"initial": -1, "subsequent": 2}}\n')
        assert bad["ok"] is False and "initial" in bad["error"]
    # That rank was initialized and its connection closed without shutdown: reported at once.
    event = monitor.events.get(timeout=5)
    assert (event.kind, event.rank, event.local_rank, event.pid) == ("disconnected", 5, 1, os.getpid())


def test_two_monitors_are_isolated(monitor):
    other = RankMonitor(CONFIG)
    other.start()
    try:
        assert other.worker_env() != monitor.worker_env()
        with connect(monitor) as sock:
            assert exchange(sock, init_message(rank=3))["ok"]
        assert monitor.events.get(timeout=5).rank == 3
        with pytest.raises(queue.Empty):
            other.events.get(timeout=0.3)
    finally:
        other.stop()
    assert not os.path.exists(os.path.dirname(other.worker_env()[ENDPOINT_ENV]))
    assert os.path.exists(monitor.worker_env()[ENDPOINT_ENV])


def test_reset_forgets_ranks_and_drops_their_pending_events(monitor, monkeypatch):
    first = connect(monitor)
    assert exchange(first, init_message(rank=0))["ok"]
    second = connect(monitor)
    slot = exchange(second, init_message(rank=1))["slot"]
    second.close()
    monitor.events.get(timeout=5)  # the drop of rank 1 was reported...
    third = connect(monitor)
    assert exchange(third, init_message(rank=2))["ok"]
    third.close()
    monitor.reset()  # ...rank 2's was not taken yet: reset discards it
    assert monitor.events.empty()
    assert closed_by_monitor(first)  # the old attempt's connections are closed, silently
    with pytest.raises(queue.Empty):
        monitor.events.get(timeout=0.3)
    with connect(monitor) as fresh:
        reply = exchange(fresh, init_message(rank=0))
        assert reply["ok"] and reply["slot"] > slot and "attempt1" in reply["stack_file"]
        assert exchange(fresh, b'{"type": "shutdown"}\n')["ok"]
    first.close()


def test_an_exception_in_a_handler_does_not_stop_monitoring(monitor, monkeypatch):
    original = monitor._handler.handle
    calls = []

    def broken_once(conn, message):
        calls.append(message)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return original(conn, message)

    monkeypatch.setattr(monitor._handler, "handle", broken_once)
    monkeypatch.setenv(ENDPOINT_ENV, monitor.worker_env()[ENDPOINT_ENV])
    with pytest.raises(RankMonitorClientError, match="internal error"):
        RankMonitorClient().init_workload_monitoring()
    client = RankMonitorClient()
    client.init_workload_monitoring()
    client.send_heartbeat()
    client.shutdown_workload_monitoring()
    with connect(monitor) as sock:
        assert exchange(sock, init_message(rank=9))["ok"]
    assert monitor.events.get(timeout=5).rank == 9


def test_monitor_lifecycle_errors():
    from ft import RankMonitorError

    monitor = RankMonitor(CONFIG)
    with pytest.raises(RankMonitorError, match="start"):
        monitor.worker_env()
    with monitor:
        with pytest.raises(RankMonitorError, match="already"):
            monitor.start()
        directory = os.path.dirname(monitor.worker_env()[ENDPOINT_ENV])
    assert not os.path.exists(directory)
    monitor.stop()  # twice is harmless


def test_a_forked_child_neither_heartbeats_for_the_rank_nor_holds_its_connection(monitor, monkeypatch):
    monkeypatch.setenv(ENDPOINT_ENV, monitor.worker_env()[ENDPOINT_ENV])
    client = RankMonitorClient()
    client.init_workload_monitoring()
    pid = os.fork()
    if pid == 0:  # e.g. a DataLoader worker
        try:
            client.send_heartbeat()
            code = 1
        except RankMonitorClientError as exc:
            code = 0 if "forked" in str(exc) else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.send_heartbeat()  # the rank itself is unaffected...
    with pytest.raises(queue.Empty):
        monitor.events.get(timeout=0.3)  # ...and the child's exit did not look like a dropped rank
    client.shutdown_workload_monitoring()
