"""launcher.job.worker_store: the store a one-node job's workers connect to, fresh for every attempt."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from ft_helpers.processes import free_port
from torch.distributed import TCPStore

from launcher.job.worker_store import WorkerStore


def _client(port: int) -> TCPStore:
    return TCPStore("127.0.0.1", port, is_master=False, timeout=timedelta(seconds=5))


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def store():
    hosted = WorkerStore()
    yield hosted
    hosted.close()


def test_workers_connect_as_clients_and_share_keys(store):
    port = free_port()
    assert store.open(port)
    first, second = _client(port), _client(port)
    first.set("rank0", "ready")
    assert second.get("rank0") == b"ready"


def test_each_attempt_gets_an_empty_store_and_the_old_one_stops(store):
    old, new = free_port(), free_port()
    assert store.open(old)
    _client(old).set("stale", "from attempt 0")
    assert store.open(new)
    assert not _listening(old)
    assert store.port == new
    assert _client(new).check(["stale"]) is False


def test_a_taken_port_leaves_the_store_to_rank_0(store):
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        assert store.open(taken.getsockname()[1]) is False
    assert store.port is None
