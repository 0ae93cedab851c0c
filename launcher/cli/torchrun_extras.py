"""torchrun's less common flags: each taken with torchrun's meaning where the installed torch has it, else refused.

``TORCHRUN_EXTRAS`` declares them for ``launcher/cli/args.py``; ``check`` turns the parsed values
into what the job uses (``worker_spec``: WorkerSpec fields, ``--shutdown-timeout`` as
``--term-timeout``, the ``--logs-specs`` class) or a one-line refusal saying why. Imports no torch.
"""

from __future__ import annotations

from typing import Any

# (flag, help, takes no value)
TORCHRUN_EXTRAS: tuple[tuple[str, str, bool], ...] = (
    ("run-path", "as torchrun: run the script with runpy.run_path (what forked workers do anyway)", True),
    ("logs-specs", "as torchrun: name of a torchrun.logs_specs entry point (a LogsSpecs class)", False),
    ("numa-binding", "refused: ft_launcher does not bind workers to NUMA nodes", False),
    ("virtual-local-rank", "as torchrun: every worker sees LOCAL_RANK=0 and only its own GPU", True),
    ("shutdown-timeout", "as torchrun: seconds between SIGTERM and SIGKILL on shutdown (= --term-timeout)", False),
    ("event-log-handler", "as torchrun: elastic's event log handler (null, console, ...)", False),
    ("duplicate-stdout-filters", "as torchrun: copy stdout lines containing any of these words to a file", False),
    ("duplicate-stderr-filters", "as torchrun: copy stderr lines containing any of these words to a file", False),
)
_SPEC_FIELDS = {"virtual_local_rank": "virtual-local-rank", "event_log_handler": "event-log-handler",
                "duplicate_stdout_filters": "duplicate-stdout-filters",
                "duplicate_stderr_filters": "duplicate-stderr-filters"}


class Refused(ValueError):
    """A torchrun flag ft_launcher cannot honour here (exit 2, one line)."""


def check(ns: Any) -> None:
    """Validate the extras on the parsed namespace; sets ``ns.worker_spec`` (extra WorkerSpec fields)."""
    if ns.numa_binding is not None:
        raise Refused("--numa-binding is not supported: workers are forked from ft_launcher's fork server, which "
                      "torch's NUMA binding cannot wrap; run ft_launcher under numactl instead")
    if ns.run_path and ns.no_python:
        raise Refused("--run-path runs a Python script; it cannot be combined with --no-python")
    if ns.shutdown_timeout is not None:
        try:
            ns.term_timeout = float(ns.shutdown_timeout)
        except ValueError:
            raise Refused(f"--shutdown-timeout: expected seconds, got {ns.shutdown_timeout!r}") from None
    values = {"virtual_local_rank": ns.virtual_local_rank or None, "event_log_handler": ns.event_log_handler,
              "duplicate_stdout_filters": _words(ns.duplicate_stdout_filters),
              "duplicate_stderr_filters": _words(ns.duplicate_stderr_filters)}
    wanted = {key: value for key, value in values.items() if value is not None}
    ns.worker_spec = {}
    if wanted:
        from launcher.compat import worker_spec_fields  # imports torch: only when such a flag is given

        missing = [key for key in wanted if key not in worker_spec_fields()]
        if missing:
            raise Refused(f"--{_SPEC_FIELDS[missing[0]]} needs a torch whose elastic agent has it; this one does not")
        ns.worker_spec = wanted


def _words(text: str | None) -> list[str] | None:
    return [word for word in text.split(",") if word] if text else None


def logs_specs_class(name: str | None) -> Any:
    """The LogsSpecs class named by ``--logs-specs`` (a ``torchrun.logs_specs`` entry point), as torchrun finds it."""
    from importlib.metadata import entry_points

    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs

    if name is None:
        return DefaultLogsSpecs
    found = entry_points().select(group="torchrun.logs_specs", name=name)
    if not found:
        raise Refused(f"--logs-specs: no entry point torchrun.logs_specs[{name}] is installed")
    return next(iter(found)).load()
