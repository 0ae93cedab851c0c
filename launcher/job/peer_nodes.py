"""The other nodes of an attempt: who each is (host, launcher pid, its ranks), and which of them are gone.

At each attempt every node of a multi-node job publishes its identity in the rendezvous round's
store and reads the others'; from then on it advances its own counter there (``node_beats.py``).
When a local rank fails or hangs, the agent starts a watch of the peers' counters at once and
settles it after its own workers are ended: a peer whose counter stood still is named as lost,
instead of blaming the local rank that only saw its peers vanish; a store that cannot be reached
names the node hosting it (each node says whether it does: whether this process listens on the
rendezvous endpoint's port) and the endpoint. Nothing in the rule depends on which host a
peer runs on: the host and pid are only there to tell people which node it was.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from launcher.job.node_beats import WATCH_PERIODS, Beats, Watch, beat_period

log = logging.getLogger("launcher")
_KEY = "pulsetrain/node"
_WAIT = timedelta(seconds=60)  # the other nodes publish right after the same rendezvous round


def hosts_port(port: int | None) -> bool:
    """Whether this process listens on TCP ``port`` (it hosts the rendezvous store there); Linux /proc."""
    if port is None:
        return False
    try:
        inodes = {line.split()[9] for name in ("/proc/net/tcp", "/proc/net/tcp6") if os.path.exists(name)
                  for line in Path(name).read_text().splitlines()[1:]
                  if line.split()[3] == "0A" and int(line.split()[1].rsplit(":", 1)[1], 16) == port}
        return any(os.readlink(f"/proc/self/fd/{fd}") in {f"socket:[{i}]" for i in inodes}
                   for fd in os.listdir("/proc/self/fd") if inodes)
    except (OSError, ValueError, IndexError):
        return False


def _port(endpoint: str) -> int | None:
    host, _, port = endpoint.rpartition(":")
    return int(port) if host and port.isdigit() else None


def describe(group_rank: int, node: dict[str, Any]) -> str:
    ranks = node.get("ranks") or []
    which = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks[0]}-{ranks[-1]}" if ranks else "no ranks"
    return f"node {group_rank} (host {node.get('host')}, launcher pid {node.get('pid')}, {which})"


class PeerNodes:
    """This attempt's other nodes, by group rank (empty for a one-node job or when they could not be read)."""

    def __init__(self, endpoint: str = "") -> None:
        self.host = socket.gethostname()
        self.endpoint = endpoint or "its endpoint"
        self._port = _port(endpoint)
        self.nodes: dict[int, dict[str, Any]] = {}
        self.beats = Beats()
        self._store: Any = None
        self._keys: dict[int, str] = {}
        self._watch: Watch | None = None

    def publish(self, worker_group: Any, attempt_id: str, monitor_interval: float) -> None:
        """Publish this node and read every other node of the attempt (after the rendezvous round)."""
        self.nodes, self._watch = {}, None
        count = worker_group.group_world_size or 1
        if count <= 1:
            return
        me, store = worker_group.group_rank, worker_group.store
        mine = {"host": self.host, "pid": os.getpid(), "beat_every": beat_period(monitor_interval),
                "hosts_store": hosts_port(self._port),
                "ranks": sorted(w.global_rank for w in worker_group.workers)}
        keys = {rank: f"{_KEY}/{attempt_id}/{rank}" for rank in range(count) if rank != me}
        try:
            store.set(f"{_KEY}/{attempt_id}/{me}", json.dumps(mine))
            self.beats.attach(store, f"{_KEY}/{attempt_id}/{me}")
            store.wait(list(keys.values()), _WAIT)
            self.nodes = {rank: json.loads(store.get(key)) for rank, key in keys.items()}
        except Exception as exc:  # a store gone or slow: blame then falls back to the local ranks
            log.warning("could not read the other nodes of this attempt from the rendezvous store: %s", exc)
        self._store, self._keys = store, {rank: keys[rank] for rank in self.nodes}

    def start_check(self) -> bool:
        """A local rank failed or hung: read the peers' counters now (once per attempt); False for one node."""
        if not self.nodes:
            return False
        if self._watch is None:
            window = WATCH_PERIODS * max(float(node.get("beat_every", 1.0)) for node in self.nodes.values())
            self._watch = Watch(self._store, self._keys, window)
        return True

    def blame_lost(self, local_failure: str, ended_at: float | None = None) -> str | None:
        """Settle the check: log a lost node as the cause and return the attempt's cause, or None when
        every peer is alive. ``ended_at``: when the local workers were ended (to say what the check added)."""
        if not self.start_check():
            return None
        watch = self._watch
        assert watch is not None
        lost = watch.settle()
        done = time.monotonic()
        log.info("the other nodes' counters were checked in %.2f s after the local failure (%.2f s after the "
                 "local workers ended)", done - watch.began, max(0.0, done - (ended_at or watch.began)))
        if watch.unreachable is not None:
            host = [rank for rank, node in sorted(self.nodes.items()) if node.get("hosts_store")]
            who = describe(host[0], self.nodes[host[0]]) if host else "the node hosting the rendezvous store"
            log.error("%s was lost: the rendezvous store it hosted at %s cannot be reached (%s)",
                      who, self.endpoint, watch.unreachable)
            which = f"node {host[0]}" if host else "the node hosting the rendezvous store"
            log.warning("%s here: its collectives fail without %s; ended with it", local_failure, which)
            return f"{who} lost (the rendezvous store at {self.endpoint}), then {local_failure}"
        if not lost:
            return None
        for rank in lost:
            log.error("%s was lost: its counter in the rendezvous store stood still for %.1f s (its launcher is "
                      "gone: killed, or its node failed)", describe(rank, self.nodes[rank]), done - watch.began)
        log.warning("%s here: its collectives fail without node %d; ended with it", local_failure, lost[0])
        return f"{describe(lost[0], self.nodes[lost[0]])} lost, then {local_failure}"
