"""The workers' TCPStore of a one-node job, hosted by the launcher: a fresh one for every attempt.

Why: without it, rank 0 starts the store inside its ``init_process_group`` while the other ranks
are already trying to connect. A connection that comes too early is refused and retried after a
back-off, and that cost a restarted job 0.2–0.7 s before its first step in about half the restarts
measured here (benchmarks/recovery.py). A store that already listens when the workers start removes
the race: every rank, rank 0 included, connects as a client (``TORCHELASTIC_USE_AGENT_STORE=True``,
which torch's ``env://`` rendezvous and ``train.distributed`` both honour).

It is not elastic's rendezvous store: sharing that one with gloo workers made restarts fail
(pytorch issue 135712). This one is new for each attempt, so no key of a failed attempt is ever
read, which is what torch's ``env://`` rendezvous assumes of an agent's store.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

USE_AGENT_STORE_ENV = "TORCHELASTIC_USE_AGENT_STORE"


class WorkerStore:
    """At most one listening TCPStore server; ``open`` replaces the previous attempt's."""

    def __init__(self) -> None:
        self._store: Any | None = None
        self.port: int | None = None

    def open(self, port: int) -> bool:
        """Listen on ``port`` (elastic picked it free); False if it cannot, and the workers host it as usual."""
        self.close()
        from torch.distributed import TCPStore

        try:
            self._store = TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False,
                                   timeout=timedelta(seconds=60))
        except (RuntimeError, OSError) as exc:  # the port was taken in between: rank 0 hosts it instead
            log.debug("could not host the workers' store on port %d: %s", port, exc)
            return False
        self.port = port
        return True

    def close(self) -> None:
        """Stop listening (dropping the last reference stops the server)."""
        self._store = None
        self.port = None
