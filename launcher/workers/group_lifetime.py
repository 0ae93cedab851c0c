"""Inside a forked worker: keep every process group alive until the worker exits.

Why: the zygote preloads ``torch._dynamo`` so a restarted rank steps within a fraction of a second,
and with it imported early, gloo teardown deadlocked in 1 of about 4 launches (torch 2.13). The
cause, from gdb on stuck workers (docs/launcher.md, "Fork server"): after ``destroy_process_group()``
the DDP ``Reducer`` holds the last reference to the gloo group; when the script's frame drops the
model, the Reducer frees the group with the GIL held, and ``~ProcessGroupGloo`` joins its run-loop
threads. One of them is still freeing a finished all-reduce whose saved thread-local state holds a
Python object (the context ``backward()`` stashes), and waits for that GIL. Neither moves.

A forked worker always ends with ``os._exit`` (``launcher.workers.worker_main``), so a group kept referenced
here is never destroyed in the worker at all: no join, no GIL wait. ``destroy_process_group`` still
shuts the group down and forgets it, so a script may create another one afterwards.
"""

from __future__ import annotations

import functools
from typing import Any

_kept: list[Any] = []  # process groups a destroy_process_group() call let go of; never freed
_MARK = "_pulsetrain_keeps_groups"


def _groups_to_keep(c10d: Any, args: tuple, kwargs: dict) -> list[Any]:
    group = args[0] if args else kwargs.get("group")
    if group is not None:
        return [group]
    world = getattr(c10d, "_world", None)  # private; listed in launcher.compat.PRIVATE_NAMES
    groups = list(getattr(world, "pg_map", None) or ())
    default = c10d.group.WORLD  # public: the default group, None when there is none
    return groups if default is None or any(g is default for g in groups) else [*groups, default]


def keep_groups_until_exit() -> None:
    """Make ``torch.distributed.destroy_process_group`` keep a reference to what it destroys (idempotent)."""
    import torch.distributed as dist

    if not dist.is_available():
        return
    from torch.distributed import distributed_c10d as c10d

    original = c10d.destroy_process_group
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def destroy_process_group(*args: Any, **kwargs: Any) -> Any:
        _kept.extend(_groups_to_keep(c10d, args, kwargs))
        return original(*args, **kwargs)

    setattr(destroy_process_group, _MARK, True)
    c10d.destroy_process_group = destroy_process_group
    dist.destroy_process_group = destroy_process_group
