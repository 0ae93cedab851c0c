"""The other nodes of an attempt: who each is (host, launcher pid, its ranks), and which of them are gone.

At each attempt every node of a multi-node job publishes its identity in the rendezvous round's
store and reads the others'. When a local rank then fails or hangs, a peer node whose launcher no
longer runs is named as lost, instead of blaming the local rank that only saw its peers vanish.
Whether a launcher runs can be told only on this host (its pid and the process's start time, from
/proc); a node on another host is never called lost from here.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import timedelta
from typing import Any

from launcher.job.run_dir_lock import process_start_time

log = logging.getLogger("launcher")
_KEY = "pulsetrain/node"
_WAIT = timedelta(seconds=60)  # the other nodes publish right after the same rendezvous round


def describe(group_rank: int, node: dict[str, Any]) -> str:
    ranks = node.get("ranks") or []
    which = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks[0]}-{ranks[-1]}" if ranks else "no ranks"
    return f"node {group_rank} (host {node.get('host')}, launcher pid {node.get('pid')}, {which})"


class PeerNodes:
    """This attempt's other nodes, by group rank (empty for a one-node job or when they could not be read)."""

    def __init__(self) -> None:
        self.host = socket.gethostname()
        self.nodes: dict[int, dict[str, Any]] = {}

    def publish(self, worker_group: Any, attempt_id: str) -> None:
        """Publish this node and read every other node of the attempt (after the rendezvous round)."""
        self.nodes = {}
        count = worker_group.group_world_size or 1
        if count <= 1:
            return
        me, store = worker_group.group_rank, worker_group.store
        mine = {"host": self.host, "pid": os.getpid(), "pid_started": process_start_time(os.getpid()),
                "ranks": sorted(w.global_rank for w in worker_group.workers)}
        keys = {rank: f"{_KEY}/{attempt_id}/{rank}" for rank in range(count) if rank != me}
        try:
            store.set(f"{_KEY}/{attempt_id}/{me}", json.dumps(mine))
            store.wait(list(keys.values()), _WAIT)
            self.nodes = {rank: json.loads(store.get(key)) for rank, key in keys.items()}
        except Exception as exc:  # a store gone or slow: blame then falls back to the local ranks
            log.warning("could not read the other nodes of this attempt from the rendezvous store: %s", exc)

    def lost(self) -> list[tuple[int, dict[str, Any]]]:
        """Peer nodes on this host whose launcher no longer runs (killed, or its machine part gone)."""
        return [(rank, node) for rank, node in sorted(self.nodes.items())
                if node.get("host") == self.host and process_start_time(int(node.get("pid", 0))) != node.get("pid_started")]

    def blame_lost(self, local_failure: str) -> str | None:
        """Log a lost node as the cause; returns the attempt's cause, or None when no peer node is lost."""
        lost = self.lost()
        if not lost:
            return None
        for rank, node in lost:
            log.error("%s was lost: its launcher is gone (killed, or its node failed)", describe(rank, node))
        log.warning("%s here: its collectives fail without node %d; ended with it", local_failure, lost[0][0])
        return f"{describe(*lost[0])} lost, then {local_failure}"
