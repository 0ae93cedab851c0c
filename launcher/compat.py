"""Every private name of torch.distributed.elastic and Hydra that the launcher relies on, in one place.

Each difference between releases is found by looking at the installed code (a parameter, an
attribute), never by comparing version numbers, so a release that keeps a shape keeps working and
one that changes it fails ``tests/unit/test_compat.py`` with the name that moved. Nothing outside
this module touches these names; ``PRIVATE_NAMES`` lists them for that test and for maintainers. The
one exception is ``launcher/workers/group_lifetime.py``: it runs inside forked workers, which must not pay for
importing elastic, so it reads its one name (listed here too) by ``getattr`` with a fallback.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import torch.distributed.elastic.agent.server.local_elastic_agent as _local_agent
import torch.distributed.elastic.rendezvous.dynamic_rendezvous as _dynamic_rdzv
from torch.distributed.elastic.multiprocessing import api as _mp_api
from torch.distributed.elastic.multiprocessing.subprocess_handler import SubprocessHandler
from torch.distributed.elastic.rendezvous import utils as _rdzv_utils

LocalElasticAgent = _local_agent.LocalElasticAgent
# The releases the suite ran on (docs/compatibility.md); only for telling people, never for branching.
TESTED_TORCH_RANGE = ((2, 6), (2, 15))

# (where, what we use it for); the compat test checks each on the installed torch and Hydra.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("local_elastic_agent.start_processes", "module global the agent calls; swapped for our process contexts"),
    ("LocalElasticAgent._pcontext", "the running worker group's process context"),
    ("LocalElasticAgent._remaining_restarts", "restart budget left; zeroed when a worker exits 2"),
    ("LocalElasticAgent._shutdown(death_sig[, timeout | is_restart])", "agent teardown; differs by release"),
    ("LocalElasticAgent._stop_workers(worker_group[, is_restart])", "group teardown before a restart"),
    ("LocalElasticAgent._rendezvous(worker_group)", "each attempt's join; the node's health checks run first"),
    ("LocalElasticAgent.__init__(shutdown_timeout=)", "only on newer releases"),
    ("PContext._start/_poll/_close/pids", "abstract methods our process contexts implement"),
    ("SubprocessHandler._popen, ._stdout, ._stderr", "start a worker in its own session; close its log files"),
    ("multiprocessing.api._terminate_process_handler", "elastic's SIGTERM handler, installed early"),
    ("rendezvous.utils._parse_rendezvous_config", "torchrun's --rdzv-conf parser"),
    ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper.split_arguments", "-m sweep expansion"),
    ("rendezvous.dynamic_rendezvous._delay", "skipped for its random 0-0.3 s skew in a one-node job"),
    ("distributed_c10d._world.pg_map", "every process group a forked worker destroys; kept until it exits "
     "(launcher/workers/group_lifetime.py; without it, only the default group is kept)"),
)


def untested_torch(version: str) -> str | None:
    """A warning when ``version`` (torch.__version__) lies outside the tested range, else None."""
    try:
        release = tuple(int(part) for part in version.split("+")[0].split(".")[:2])
    except ValueError:
        return None  # a source build with an unusual version string: nothing to say
    low, high = TESTED_TORCH_RANGE
    if low <= release <= high:
        return None
    return (f"torch {version} is outside the releases pulsetrain was tested on "
            f"({low[0]}.{low[1]} to {high[0]}.{high[1]}); if the launcher fails, "
            f"`pytest tests/unit/test_compat.py` names the private API that changed")


def _accepts(func: Callable[..., Any], name: str) -> bool:
    return name in inspect.signature(func).parameters


AGENT_TAKES_SHUTDOWN_TIMEOUT = _accepts(LocalElasticAgent.__init__, "shutdown_timeout")
SHUTDOWN_TAKES_TIMEOUT = _accepts(LocalElasticAgent._shutdown, "timeout")
# Older releases close the rendezvous inside _shutdown unless told it is a restart.
SHUTDOWN_TAKES_IS_RESTART = _accepts(LocalElasticAgent._shutdown, "is_restart")
HANDLER_TAKES_NUMA = _accepts(SubprocessHandler.__init__, "numa_options")

terminate_process_handler: Callable[[int, Any], None] = _mp_api._terminate_process_handler
parse_rendezvous_config: Callable[[str], dict[str, Any]] = _rdzv_utils._parse_rendezvous_config


@contextlib.contextmanager
def rendezvous_without_random_skew() -> Iterator[None]:
    """While inside, elastic's dynamic rendezvous skips its random 0-0.3 s delay before a join.

    The delay spreads many nodes' joins out, so the store is not hit by all at once. torch applies it
    while the rendezvous is still in round 0, which includes the first restart: 0.15 s on average
    added to the first recovery (0.13 s measured in one), for nothing when the job has one node.
    Fixed delays (its one-second polling while it waits for other nodes) are kept.
    """
    original = getattr(_dynamic_rdzv, "_delay", None)
    if original is None:
        yield
        return

    def delay(seconds: float | tuple[float, float]) -> None:
        if not isinstance(seconds, tuple):
            original(seconds)

    _dynamic_rdzv._delay = delay
    try:
        yield
    finally:
        _dynamic_rdzv._delay = original


class CompatibleAgent(LocalElasticAgent):
    """LocalElasticAgent with one shape on every supported torch: named accessors, one teardown call."""

    def __init__(self, spec: Any, logs_specs: Any, shutdown_timeout: float) -> None:
        extra = {"shutdown_timeout": int(shutdown_timeout)} if AGENT_TAKES_SHUTDOWN_TIMEOUT else {}
        super().__init__(spec, logs_specs, start_method="spawn", **extra)

    @property
    def worker_context(self) -> Any:
        """The current worker group's process context (None before the first start)."""
        return self._pcontext

    @property
    def restarts_left(self) -> int:
        return self._remaining_restarts

    @restarts_left.setter
    def restarts_left(self, value: int) -> None:
        self._remaining_restarts = value

    @contextlib.contextmanager
    def processes_started_by(self, factory: Callable[..., Any]) -> Iterator[None]:
        """While inside, the agent starts workers through ``factory`` (start_processes' arguments)."""
        original = _local_agent.start_processes
        _local_agent.start_processes = factory
        try:
            yield
        finally:
            _local_agent.start_processes = original

    def _shutdown(self, death_sig: signal.Signals = signal.SIGTERM, timeout: float | None = None,
                  **_ignored: Any) -> None:
        # Releases call _shutdown(sig), _shutdown(sig, timeout=...) or _shutdown(is_restart=...).
        self.shutdown_workers(death_sig, timeout)

    def _rendezvous(self, worker_group: Any) -> None:
        # Called by _initialize_workers: at the start and before every restart's join.
        self.before_rendezvous()
        super()._rendezvous(worker_group)

    def before_rendezvous(self) -> None:
        """Runs before this node joins each attempt's rendezvous; subclasses refine this."""

    def _stop_workers(self, worker_group: Any, *_ignored: Any, **_also_ignored: Any) -> None:
        # Older releases pass is_restart=True here; the group ends the same way either way.
        self.stop_workers(worker_group)

    def shutdown_workers(self, death_sig: signal.Signals, timeout: float | None) -> None:
        """End the agent's workers (the job is over or a signal stops it); subclasses refine this."""
        self.elastic_shutdown(death_sig, timeout)

    def stop_workers(self, worker_group: Any) -> None:
        """End the worker group before a restart; subclasses refine this."""
        self.elastic_shutdown(signal.SIGTERM, None)

    def elastic_shutdown(self, death_sig: signal.Signals, timeout: float | None) -> None:
        """Elastic's own teardown (watchdog, health server, process context) on any release.

        It never closes the rendezvous: the job decides that (kept open after a stop request, so a
        relaunch can join it, as torchrun does).
        """
        if SHUTDOWN_TAKES_TIMEOUT and timeout is not None:
            super()._shutdown(death_sig, timeout=int(timeout))
        elif SHUTDOWN_TAKES_IS_RESTART:
            super()._shutdown(death_sig, is_restart=True)
        else:
            super()._shutdown(death_sig)


class SessionSubprocessHandler(SubprocessHandler):
    """Elastic's worker process, started in a session of its own (``preexec`` runs after fork)."""

    def __init__(self, *, preexec: Callable[[], None], entrypoint: str, args: tuple, env: dict[str, str],
                 stdout: str | None, stderr: str | None, local_rank_id: int) -> None:
        self._preexec = preexec
        extra = {"numa_options": None} if HANDLER_TAKES_NUMA else {}
        super().__init__(entrypoint=entrypoint, args=args, env=env, stdout=stdout, stderr=stderr,
                         local_rank_id=local_rank_id, **extra)

    def _popen(self, args: tuple, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(args=args, env=env, stdout=self._stdout, stderr=self._stderr,
                                start_new_session=True, preexec_fn=self._preexec)

    def close_log_files(self) -> None:
        for stream in (self._stdout, self._stderr):
            if stream is not None:
                stream.close()


def split_sweep(parsed_overrides: list[Any]) -> list[list[list[str]]]:
    """Hydra's basic sweeper's expansion of parsed overrides into batches of jobs."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper.split_arguments(parsed_overrides, None)


# The worker-output options elastic hands start_processes (duplicate_stdout_filters, ...) that the
# installed PContext takes; ours subclass it, so those work as in torchrun.
_PCONTEXT_OPTIONS = frozenset(inspect.signature(_mp_api.PContext.__init__).parameters) - {
    "self", "name", "entrypoint", "args", "envs", "logs_specs", "log_line_prefixes"}


def context_options(options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` (elastic's extra start_processes arguments) our process contexts accept."""
    return {key: value for key, value in options.items() if key in _PCONTEXT_OPTIONS}


def worker_spec_fields() -> frozenset[str]:
    """The fields of the installed elastic's WorkerSpec (newer releases add virtual_local_rank, ...)."""
    import dataclasses

    from torch.distributed.elastic.agent.server.api import WorkerSpec

    return frozenset(f.name for f in dataclasses.fields(WorkerSpec))
