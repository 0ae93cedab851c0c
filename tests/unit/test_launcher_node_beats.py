"""Node liveness from counters in the rendezvous store (launcher/job/node_beats.py), against a real TCPStore."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from torch.distributed import PrefixStore, TCPStore

from launcher.job import node_beats
from launcher.job.node_beats import Beats, Watch
from launcher.job.peer_nodes import PeerNodes, hosts_port


@pytest.fixture
def store():
    server = TCPStore("127.0.0.1", 0, is_master=True, timeout=timedelta(seconds=5), wait_for_workers=False)
    return PrefixStore("round.0", server)


def test_a_peer_that_keeps_counting_is_alive_and_one_that_stands_still_is_lost(store, monkeypatch):
    monkeypatch.setattr(node_beats, "BEAT_EVERY", 0.0)
    alive, silent = Beats(), Beats()
    alive.attach(store, "n/1")
    silent.attach(store, "n/2")
    watch = Watch(store, {1: "n/1", 2: "n/2"}, window=0.4)
    alive.beat()
    began = time.monotonic()
    assert watch.settle() == [2]
    assert 0.4 <= time.monotonic() - began + (began - watch.began) < 2.0  # it waited the window, no longer
    assert watch.unreachable is None


def test_a_peer_that_said_it_is_leaving_is_alive_at_once(store):
    leaving = Beats()
    leaving.attach(store, "n/1")
    leaving.leaving()
    leaving.beat()  # after leaving the counter stands still: no store left to count in
    watch = Watch(store, {1: "n/1"}, window=30.0)
    began = time.monotonic()
    assert watch.settle() == []
    assert time.monotonic() - began < 1.0


def test_beats_are_throttled_to_one_a_period(store):
    beats = Beats()
    beats.attach(store, "n/1")
    for _ in range(50):
        beats.beat()
    assert store.add("n/1/beat", 0) == 1


class _GoneStore:
    def add(self, *_):
        raise RuntimeError("Broken pipe")

    check = set = add


def test_a_store_that_cannot_be_reached_means_its_host_is_lost():
    watch = Watch(_GoneStore(), {1: "n/1", 2: "n/2"}, window=30.0)
    assert watch.settle() == [1, 2] and "Broken pipe" in str(watch.unreachable)
    beats = Beats()
    beats.attach(_GoneStore(), "n/0")  # advancing fails quietly: the local failure that follows names it
    beats.beat()


def test_the_node_hosting_the_store_is_named_with_the_endpoint(caplog):
    server = TCPStore("127.0.0.1", 0, is_master=True, timeout=timedelta(seconds=5), wait_for_workers=False)
    assert hosts_port(server.port) and not hosts_port(1)
    peers = PeerNodes(f"127.0.0.1:{server.port}")
    peers.nodes = {1: {"host": "b", "pid": 42, "ranks": [1], "hosts_store": True}}
    peers._store, peers._keys = _GoneStore(), {1: "n/1"}
    cause = peers.blame_lost("rank 0 failed (exit 1)")
    assert cause == (f"node 1 (host b, launcher pid 42, rank 1) lost (the rendezvous store at 127.0.0.1:{server.port}), "
                     "then rank 0 failed (exit 1)")
    assert any(r.levelname == "ERROR" and "node 1 (host b, launcher pid 42, rank 1) was lost" in r.message
               for r in caplog.records)
    assert any(r.levelname == "WARNING" and "its collectives fail without node 1" in r.message for r in caplog.records)
