"""Liveness across hosts: each node advances a counter in the rendezvous store; a peer's that stands still is lost.

Every node's agent adds 1 to its own counter from its main loop (``_monitor_workers``, called every
``--monitor-interval``), at most once per ``BEAT_EVERY``: no thread, and no clock compared across hosts.
A node that ends its workers (one of its ranks failed or hung, another node joined, the job stops)
first says so (``leaving``): its counter then stands still while it tears down and waits at the
rendezvous, and it is not lost. When a local rank fails or hangs, a ``Watch`` reads every peer's
counter at once and again until each has advanced or said it is leaving, for at most
``WATCH_PERIODS`` of the slowest peer's beat period. A store that cannot be reached means the node
hosting it is gone.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("launcher")
BEAT_EVERY = 1.0  # seconds: the most often a node advances its counter
WATCH_PERIODS = 3.0  # beat periods a peer's counter may stand still before the peer is called lost
_POLL = 0.05  # seconds between two reads of the peers' counters (a remote counter has no event to wait on)


def beat_period(monitor_interval: float) -> float:
    """How often a node with this ``--monitor-interval`` advances its counter (published with its identity)."""
    return max(BEAT_EVERY, monitor_interval)


class Beats:
    """This node's counter in the current attempt's rendezvous store (the agent's main thread only)."""

    def __init__(self) -> None:
        self._store: Any = None
        self._key = ""
        self._next = 0.0
        self._failed = False

    def attach(self, store: Any, key: str) -> None:
        """Count under ``key`` in ``store`` (this attempt's), starting now."""
        self._store, self._key, self._next, self._failed = store, key, 0.0, False
        self.beat()

    def beat(self) -> None:
        """Advance the counter, at most once per ``BEAT_EVERY`` (called every monitor interval)."""
        now = time.monotonic()
        if self._store is None or now < self._next:
            return
        self._next = now + BEAT_EVERY
        try:
            self._store.add(f"{self._key}/beat", 1)
        except Exception as exc:  # the store's host is gone: a local failure follows, and the watch names it
            if not self._failed:
                log.debug("could not advance this node's counter in the rendezvous store: %s", exc)
            self._failed = True

    def leaving(self) -> None:
        """Say this node ends its workers: its counter stands still from now on, and it is not lost."""
        if self._store is None:
            return
        try:
            self._store.set(f"{self._key}/leaving", "1")
        except Exception as exc:
            log.debug("could not mark this node as leaving in the rendezvous store: %s", exc)
        self._store = None


class Watch:
    """One check of the peers' counters: begun at the first local failure, settled after the teardown."""

    def __init__(self, store: Any, keys: dict[int, str], window: float) -> None:
        self.began = time.monotonic()
        self.deadline = self.began + window
        self.unreachable: Exception | None = None
        self._store, self._keys = store, keys
        self._first = self._read()
        self._alive = {rank for rank, (_, leaving) in self._first.items() if leaving}

    def _read(self) -> dict[int, tuple[int, bool]]:
        """Every peer's counter and whether it said it is leaving; {} once the store cannot be reached."""
        if self.unreachable is not None:
            return {}
        try:
            # add(key, 0) reads a counter without waiting for it; check() never waits either.
            return {rank: (self._store.add(f"{key}/beat", 0), self._store.check([f"{key}/leaving"]))
                    for rank, key in self._keys.items()}
        except Exception as exc:
            self.unreachable = exc
            return {}

    def settle(self) -> list[int]:
        """The peers whose counter stood still for the whole window (every peer when the store is gone)."""
        while self.unreachable is None and len(self._alive) < len(self._keys):
            now = self._read()
            self._alive |= {rank for rank, (count, leaving) in now.items()
                            if leaving or count != self._first[rank][0]}
            if len(self._alive) == len(self._keys) or time.monotonic() >= self.deadline:
                break
            time.sleep(_POLL)
        if self.unreachable is not None:
            return sorted(self._keys)
        return sorted(set(self._keys) - self._alive)
