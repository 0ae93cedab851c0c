"""The fault-tolerance settings: one validated schema, and loaders for every place a value may come from.

Values come from (lowest to highest precedence) the schema defaults, the composed Hydra config
(``conf/fault_tolerance/*.yaml`` plus command-line overrides), a YAML file given with
``--ft-cfg-path`` and the launcher's ``--ft-*`` flags (read by :mod:`ft.shared.config_sources`).
Hydra is imported only inside :func:`register_configs`, so ``import ft`` stays light.
"""

from __future__ import annotations

import dataclasses
import math
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, List, Optional  # noqa: UP035 (OmegaConf needs typing.Dict, typing.List)

SECTION_TIMEOUTS = "rank_section_timeouts"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class FaultToleranceConfigError(ValueError):
    """A fault-tolerance setting a user gave is unknown or has a bad value."""


@dataclass(frozen=True)
class Setting:
    """What one key is: the rule that checks its values, its unit, and the words that explain it.

    Validation, ``--ft-*`` parsing and help, and the key table of docs/configuration.md (checked
    by a test) are all derived from these, so a key is described in exactly one place.
    """

    rule: str  # bool | seconds (> 0, or null = never) | sections | number | count | signal | level | imports
    unit: str  # the docs table's unit column
    help: str  # one line for ``ft_launcher --help``
    doc: str  # the docs table's meaning column
    metavar: str = "VALUE"
    minimum: float = 0.0  # number/count: the smallest value allowed
    strict: bool = False  # number: the minimum itself is refused


def setting(default: Any, **described: Any) -> Any:
    """A dataclass field carrying its :class:`Setting` (mutable defaults are given as factories)."""
    kind = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(metadata={"setting": Setting(**described)}, **kind)


@dataclass
class FaultToleranceConfig:
    """Settings of hang detection; the launcher's monitor enforces exactly these values.

    Timeouts are in seconds; ``None`` means infinite (that kind of hang is never detected).
    """

    enabled: bool = setting(
        True, rule="bool", unit="", metavar="BOOL", help="false: no monitor, crash restarts only",
        doc="`false`: no monitor and no heartbeats (the `off` preset).")
    initial_rank_heartbeat_timeout: Optional[float] = setting(  # noqa: UP045 (OmegaConf needs Optional)
        3600.0, rule="seconds", unit="seconds, or `null`", metavar="S|null",
        help="longest wait for a rank's first heartbeat",
        doc="Longest wait from a rank's `init_workload_monitoring()` to its first heartbeat, and from a "
            "worker's start to its `init_workload_monitoring()` (a worker that never connects is reported "
            "like a hang). `null`: never fires.")
    rank_heartbeat_timeout: Optional[float] = setting(  # noqa: UP045
        2700.0, rule="seconds", unit="seconds, or `null`", metavar="S|null",
        help="longest gap between two heartbeats",
        doc="Longest gap between two heartbeats of a rank. `null`: never fires.")
    rank_section_timeouts: Dict[str, Optional[float]] = setting(  # noqa: UP006, UP045
        dict, rule="sections", unit="name → seconds, or `null`", metavar="NAME:S,...",
        help="longest each named section may stay open, e.g. init:600,step:30",
        doc="Longest each named section (`start_section(name)` … `end_section(name)`) may stay open. A "
            "section not listed has no timeout unless one is calculated. Flag form: "
            "`--ft-rank-section-timeouts=init:600,step:30`; override form: "
            "`fault_tolerance.rank_section_timeouts={init:600,step:30}` or "
            "`fault_tolerance.rank_section_timeouts.step=30`.")
    rank_out_of_section_timeout: Optional[float] = setting(  # noqa: UP045
        None, rule="seconds", unit="seconds, or `null`", metavar="S|null",
        help="longest stretch with no section open",
        doc="Longest stretch with no section open (from init, or from the last section's end).")
    rank_exit_timeout: Optional[float] = setting(  # noqa: UP045
        300.0, rule="seconds", unit="seconds, or `null`", metavar="S|null",
        help="longest a rank may run on after ending monitoring, once all local ranks are done",
        doc="Once every local rank has ended monitoring (`shutdown_workload_monitoring()`) or exited, how "
            "long each one still running may take to exit. Then it is reported with its stacks, like a "
            "hang, and the worker group is ended (a teardown deadlock, a non-daemon thread, a slow "
            "atexit). `null`: wait forever.")
    safety_factor: float = setting(
        5.0, rule="number", unit="multiplier, ≥ 1", metavar="X", minimum=1.0,
        help="multiplier on observed intervals when timeouts are calculated",
        doc="Calculated timeouts are the largest interval observed on any rank times this factor.")
    calculated_timeout_floor: float = setting(
        10.0, rule="number", unit="seconds, > 0", metavar="S", minimum=0.0, strict=True,
        help="no calculated timeout is set below this",
        doc="No calculated timeout (heartbeat or section) is set below this. A millisecond step × "
            "`safety_factor` would otherwise give a timeout that a GC pause or a busy file system "
            "exceeds: a false alarm waiting to happen.")
    workload_check_interval: float = setting(
        0.25, rule="number", unit="seconds, > 0", metavar="S", minimum=0.0, strict=True,
        help="how often the monitor checks the deadlines",
        doc="How often the monitor checks deadlines. A hang is found at most this long after its "
            "timeout has passed.")
    rank_termination_signal: str = setting(
        "SIGKILL", rule="signal", unit="signal name", metavar="SIG",
        help="signal that ends the worker group after the grace",
        doc="Sent to the process groups of a worker group still alive `rank_termination_grace` seconds "
            "after SIGTERM (SIGTERM goes to each worker's pid only).")
    rank_termination_grace: float = setting(
        1.0, rule="number", unit="seconds, ≥ 0", metavar="S", minimum=0.0,
        help="seconds between SIGTERM and that signal",
        doc="Grace between SIGTERM and `rank_termination_signal` when a worker group is ended after a "
            "hang or crash; also what the other workers get when a rank is found hung during a graceful "
            "stop (that rank is killed at once).")
    max_no_progress_attempts: int = setting(
        3, rule="count", unit="attempts, ≥ 0", metavar="N", minimum=0,
        help="stop (exit 93) after this many attempts in a row without a new checkpoint; 0: never",
        doc="Launcher: when this many consecutive failed attempts completed no `checkpoint` section (the "
            "job never got past the step they started from), it stops restarting and exits 93. Counted once "
            "an attempt of the launch has completed one (a script without checkpoint sections is never "
            "stopped by it). `0`: off.")
    stop_on_repeated_failure: bool = setting(
        True, rule="bool", unit="", metavar="BOOL", help="stop (exit 93) when two attempts in a row fail the same way",
        doc="Launcher: two consecutive attempts that started from the same checkpoint and failed on the same rank "
            "after the same number of heartbeats with the same exception (type, message, innermost frame) or "
            "the same self-raised signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT): exit 93 at once.")
    restart_storm_restarts: int = setting(
        30, rule="count", unit="restarts, ≥ 0", metavar="N", minimum=0,
        help="stop (exit 93) after more than N restarts within restart_storm_minutes; 0: never",
        doc="Launcher: more than this many restarts within `restart_storm_minutes` end the job with 93. "
            "30 in 10 minutes is a restart every 20 s, the fault rate the goodput target is measured at; "
            "beyond it a job spends more time recovering than training.")
    restart_storm_minutes: float = setting(
        10.0, rule="number", unit="minutes, > 0", metavar="M", minimum=0.0, strict=True,
        help="the window of restart_storm_restarts",
        doc="Launcher: the sliding window `restart_storm_restarts` counts restarts in.")
    calibrate: bool = setting(
        False, rule="bool", unit="", metavar="BOOL", help="let the training loop calculate timeouts",
        doc="Training loop: calculate timeouts from observed intervals (see below).")
    calibration_steps: int = setting(
        5, rule="count", unit="steps, ≥ 1", metavar="N", minimum=1,
        help="steps after the first checkpoint before calculating",
        doc="Training loop: how many steps after the first checkpoint save the calculation happens.")
    log_level: str = setting(
        "INFO", rule="level", unit="`DEBUG` … `CRITICAL`", metavar="LEVEL", help="log level of the monitor",
        doc="Level of the `ft` loggers.")
    health_checks: List[str] = setting(  # noqa: UP006
        list, rule="imports", unit="import paths", metavar="PATH,...",
        help="your own checks before each attempt (pkg.mod:func, comma-separated)",
        doc="Your own node health checks, run by `ft_launcher` on each node before every attempt, after its "
            "own (run and checkpoint dirs, `/dev/shm`, GPUs): import paths (`pkg.mod:func` or `pkg.mod.func`, "
            "found also from the script's directory) of callables taking no arguments that raise with a "
            "message when the node is unfit. One that raises: the job exits 69 before any worker starts.")

    def __post_init__(self) -> None:
        validate(dataclasses.asdict(self))
        for key in FIELD_NAMES:  # one spelling of "never" from here on: None
            setattr(self, key, _normalise(key, getattr(self, key)))

    # ----------------------------------------------------------------- conversions
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> FaultToleranceConfig:
        """Build from a dict or DictConfig of keys (missing keys take defaults); validates everything."""
        return cls().with_changes(_plain(data or {}))

    def with_changes(self, changes: Mapping[str, Any]) -> FaultToleranceConfig:
        """Return a copy with ``changes`` applied; unknown keys and bad values raise FaultToleranceConfigError."""
        changes = _plain(changes)
        check_known(changes)
        merged = {**dataclasses.asdict(self), **changes}
        validate(merged)
        return FaultToleranceConfig(**{k: _normalise(k, v) for k, v in merged.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every key."""
        return dataclasses.asdict(self)

    @property
    def termination_signal(self) -> signal.Signals:
        return _signal(self.rank_termination_signal)


SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in dataclasses.fields(FaultToleranceConfig)}
FIELD_NAMES = tuple(SETTINGS)
DEFAULTS: dict[str, Any] = {
    f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    for f in dataclasses.fields(FaultToleranceConfig)
}


# --------------------------------------------------------------------------- validation
def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    if hasattr(data, "_metadata"):  # DictConfig without importing omegaconf at module load
        from omegaconf import OmegaConf

        data = OmegaConf.to_container(data, resolve=True)  # type: ignore[assignment]
    if not isinstance(data, Mapping):
        raise FaultToleranceConfigError(
            f"fault_tolerance must be a mapping of keys to values, got {type(data).__name__}: {data!r}"
        )
    return dict(data)


def check_known(changes: Mapping[str, Any]) -> None:
    for key in changes:
        if key not in SETTINGS:
            hint = _closest(key)
            raise FaultToleranceConfigError(
                f"fault_tolerance.{key}: unknown key"
                + (f" (did you mean '{hint}'?)" if hint else "")
                + f"; known keys: {', '.join(FIELD_NAMES)}"
            )


def _closest(key: str) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, FIELD_NAMES, n=1, cutoff=0.6)
    return match[0] if match else None


def _signal(name: Any) -> signal.Signals:
    text = str(name).upper()
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return signal.Signals[text]
    except KeyError:
        raise FaultToleranceConfigError(
            f"fault_tolerance.rank_termination_signal: unknown signal {name!r}; use a name such as SIGKILL or SIGTERM"
        ) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(values: Mapping[str, Any]) -> None:
    """Refuse bad values with a message naming the key and the value (each key by its Setting's rule)."""
    check_known(values)
    for key, described in SETTINGS.items():
        _CHECKS[described.rule](key, values.get(key), described)


def check_optional_seconds(key: str, value: Any, _: Setting | None = None) -> None:
    if value is None or value == math.inf:
        return
    if not _is_number(value) or math.isnan(value):
        raise FaultToleranceConfigError(
            f"fault_tolerance.{key}: expected a number of seconds or null (infinite), got {value!r}"
        )
    if value <= 0:
        raise FaultToleranceConfigError(
            f"fault_tolerance.{key}: must be > 0 seconds, got {value!r}; use null to disable this timeout"
        )


def _check_sections(key: str, value: Any, _: Setting) -> None:
    if not isinstance(value, Mapping):
        raise FaultToleranceConfigError(
            f"fault_tolerance.{key}: expected a mapping of section name to seconds, got {value!r}")
    for name, seconds in value.items():
        check_optional_seconds(f"{key}.{name}", seconds)


def _check_number(key: str, value: Any, described: Setting) -> None:
    if not _is_number(value) or math.isnan(value) or math.isinf(value):
        raise FaultToleranceConfigError(f"fault_tolerance.{key}: expected a finite number, got {value!r}")
    if value < described.minimum or (described.strict and value == described.minimum):
        relation = ">" if described.strict else ">="
        raise FaultToleranceConfigError(
            f"fault_tolerance.{key}: must be {relation} {described.minimum:g}, got {value!r}")


def _check_count(key: str, value: Any, described: Setting) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < described.minimum:
        raise FaultToleranceConfigError(
            f"fault_tolerance.{key}: expected a whole number >= {described.minimum:g}, got {value!r}")


def _check_bool(key: str, value: Any, _: Setting) -> None:
    if not isinstance(value, bool):
        raise FaultToleranceConfigError(f"fault_tolerance.{key}: expected true or false, got {value!r}")


def _check_level(key: str, value: Any, _: Setting) -> None:
    if str(value).upper() not in _LEVELS:
        raise FaultToleranceConfigError(
            f"fault_tolerance.{key}: expected {', '.join(_LEVELS[:-1])} or {_LEVELS[-1]}, got {value!r}")


def _import_paths(value: Any) -> list[str]:
    """A list of import paths from a list, or from the comma-separated string of ``--ft-health-checks``."""
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def _check_imports(key: str, value: Any, _: Setting) -> None:
    if not isinstance(value, (str, list, tuple)) or not all(isinstance(v, str) for v in _import_paths(value)):
        raise FaultToleranceConfigError(f"fault_tolerance.{key}: expected a list of import paths, got {value!r}")
    for path in _import_paths(value):
        if not all(part.isidentifier() for part in path.replace(":", ".").split(".")):
            raise FaultToleranceConfigError(
                f"fault_tolerance.{key}: {path!r} is not an import path such as pkg.mod:func or pkg.mod.func")


_CHECKS = {"seconds": check_optional_seconds, "sections": _check_sections, "number": _check_number,
           "count": _check_count, "bool": _check_bool, "level": _check_level, "imports": _check_imports,
           "signal": lambda key, value, _: _signal(value)}


def _seconds(value: Any) -> float | None:
    """One spelling of "never": None (``inf`` included)."""
    return None if value is None or value == math.inf else float(value)


def _normalise(key: str, value: Any) -> Any:
    rule = SETTINGS[key].rule
    if rule == "sections":
        return {str(name): _seconds(seconds) for name, seconds in value.items()}
    if rule == "seconds":
        return _seconds(value)
    if rule == "number":
        return float(value)
    if rule == "signal":
        return _signal(value).name
    if rule == "level":
        return str(value).upper()
    if rule == "imports":
        return _import_paths(value)
    return value


def format_default(value: Any) -> str:
    """A default as the docs table shows it: YAML spelling."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if value == []:
        return "[]"
    return "{}" if value == {} else str(value)


def settings_table() -> str:
    """The key table of docs/configuration.md, generated from the schema (a test keeps the docs equal)."""
    rows = ["| key | default | unit | meaning |", "|---|---|---|---|"]
    rows += [f"| `{key}` | `{format_default(DEFAULTS[key])}` | {s.unit} | {s.doc} |" for key, s in SETTINGS.items()]
    return "\n".join(rows)


# --------------------------------------------------------------------------- Hydra
def register_configs() -> None:
    """Store the schema in Hydra's ConfigStore as ``fault_tolerance/schema`` (idempotent).

    Every ``conf/fault_tolerance/*.yaml`` lists ``schema`` first in its defaults, so typos in keys
    and ill-typed values are refused at composition, before any worker starts.
    """
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="fault_tolerance", name="schema", node=FaultToleranceConfig)
