"""The attempt id every node's workers share: agreed through the rendezvous round, not counted per node."""

from __future__ import annotations

import uuid

from torch.distributed.elastic.agent.server.api import WorkerGroup

_KEY = "pulsetrain/attempt_id"


def agree_attempt_id(worker_group: WorkerGroup, restart_count: int) -> str:
    """An id all nodes' workers share for this attempt (their store prefix), from the rendezvous round.

    Each node's TORCHELASTIC_RESTART_COUNT is its own: a node restarted because another node's
    rank hung does not count that restart, and prefixes built from it disagree. The node of group
    rank 0 publishes a fresh id in the round's store (c10d gives every round a new key prefix);
    the others wait for it there. The static rendezvous has one store for every attempt and no
    restarts driven by another node: its key names this node's restart count.
    """
    key = _KEY
    if worker_group.spec.rdzv_handler.get_backend() == "static":
        key += f"/{restart_count}"
    if worker_group.group_rank == 0:
        worker_group.store.set(key, uuid.uuid4().hex[:12])
    return worker_group.store.get(key).decode()
