"""The node's health gate: which checks apply to a job, run before each rendezvous, and what a failure leaves behind.

A failure is logged as one line naming the check, what it found and what to do; this node's name
(``SLURMD_NODENAME``, else the host name) is appended to the file ``$PULSETRAIN_UNHEALTHY_NODES_FILE``
names, when set, so a batch script can requeue the job without it; then ``NodeUnhealthy`` ends the job
(exit 69) before any worker of the attempt starts.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from ft.shared.contracts import UNHEALTHY_NODES_FILE_ENV
from launcher.health import gpus, storage, user_checks
from launcher.health.problems import CheckFailed

log = logging.getLogger("launcher")


class NodeUnhealthy(Exception):
    """A health check failed on this node: the job should run elsewhere."""


class HealthChecksUnusable(Exception):
    """``fault_tolerance.health_checks`` names something that cannot be called (exit 2)."""


def node_name() -> str:
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


class NodeHealth:
    """Every check that applies to one job on this node, in order; ``check()`` runs them all or raises."""

    def __init__(self, run_dir: Path | None, checkpoint_dir: Path | None, device: str | None,
                 user_paths: list[str], heartbeat_bytes: int | None, search: list[Path]) -> None:
        checks: list[tuple[str, Callable[[], None]]] = []
        if run_dir is not None:
            checks.append(("run dir", lambda: storage.check_writable("run dir", run_dir)))
        if checkpoint_dir is not None:
            checks.append(("checkpoint dir", lambda: storage.check_writable("checkpoint dir", checkpoint_dir)))
            checks.append(("checkpoint room", lambda: storage.check_checkpoint_room("checkpoint room", checkpoint_dir)))
        if heartbeat_bytes:
            checks.append(("shared memory", lambda: storage.check_shm_room(heartbeat_bytes)))
        if device == "cuda":
            checks += [("gpus", gpus.check_gpus_visible), ("nvml", gpus.check_nvml)]
        try:
            loaded = [(path, user_checks.load(path, search)) for path in user_paths]
        except user_checks.UnusableCheck as exc:
            raise HealthChecksUnusable(str(exc)) from None
        for path, func in loaded:
            checks.append((path, lambda path=path, func=func: user_checks.run(path, func)))
        self.checks = checks

    def check(self) -> None:
        """Run every check; the first failure is logged, reported for the batch script, and raised."""
        started = time.monotonic()
        for name, run in self.checks:
            try:
                run()
            except CheckFailed as failed:
                here = node_name()
                log.error("node %s is unhealthy: %s; starting no worker here (exit 69)", here, failed)
                _report(here)
                raise NodeUnhealthy(str(failed)) from None
            log.debug("health: %s ok", name)
        log.debug("health: %d check(s) passed in %.3f s", len(self.checks), time.monotonic() - started)


def for_plan(plan, script: str | None, monitored: bool) -> NodeHealth:
    """The checks for one planned job (``launcher.planning.plan.JobPlan``); ``script``: its file, if one."""
    from ft.shared.heartbeat_slots import SLOT_BYTES, SLOT_CAPACITY

    search = [Path(script).resolve().parent] if script else []
    return NodeHealth(plan.run_dir, plan.checkpoint_dir, plan.device, list(plan.settings.config.health_checks),
                      SLOT_BYTES * SLOT_CAPACITY if monitored else None, [*search, Path.cwd()])


def _report(node: str) -> None:
    path = os.environ.get(UNHEALTHY_NODES_FILE_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(node + "\n")
    except OSError as exc:
        log.warning("cannot write this node's name to %s=%s (%s)", UNHEALTHY_NODES_FILE_ENV, path, exc)
