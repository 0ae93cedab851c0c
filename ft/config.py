"""The fault-tolerance settings: one validated schema, and loaders for every place a value may come from.

Values come from (lowest to highest precedence) the schema defaults, the composed Hydra config
(``conf/fault_tolerance/*.yaml`` plus command-line overrides), a YAML file given with
``--ft-cfg-path`` and the launcher's ``--ft-*`` flags. Each loader here returns a plain mapping
of the keys it found, so the launcher can layer them and remember where each value came from.
Hydra is imported only inside :func:`register_configs`, so ``import ft`` stays light.
"""

from __future__ import annotations

import dataclasses
import math
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional  # noqa: UP035 (OmegaConf needs typing.Dict)

import yaml

TIMEOUT_KEYS = ("initial_rank_heartbeat_timeout", "rank_heartbeat_timeout")
# Keys in seconds where null means "never": .inf (YAML), inf (override) and inf/infinity (flags) mean null too.
OPTIONAL_SECONDS = (*TIMEOUT_KEYS, "rank_out_of_section_timeout", "rank_exit_timeout")
SECTION_TIMEOUTS = "rank_section_timeouts"
_NULL_WORDS = {"", "null", "none", "~", "inf", "infinity"}
_TRUE_WORDS = {"true", "yes", "1", "on"}
_FALSE_WORDS = {"false", "no", "0", "off"}


class FaultToleranceConfigError(ValueError):
    """A fault-tolerance setting a user gave is unknown or has a bad value."""


@dataclass
class FaultToleranceConfig:
    """Settings of hang detection; the launcher's monitor enforces exactly these values.

    Timeouts are in seconds; ``None`` means infinite (that kind of hang is never detected).
    """

    # Master switch: off = no monitor, no heartbeats, crash restarts only (plain torchrun behaviour).
    enabled: bool = True
    # Longest wait from a rank's init_workload_monitoring() to its first heartbeat; covers model
    # build, data setup and checkpoint load.
    initial_rank_heartbeat_timeout: Optional[float] = 3600.0  # noqa: UP045 (OmegaConf needs Optional)
    # Longest gap between two heartbeats; must cover the slowest step and a checkpoint save.
    rank_heartbeat_timeout: Optional[float] = 2700.0  # noqa: UP045
    # Longest a section may stay open, by section name (start_section/end_section); null = never fires.
    rank_section_timeouts: Dict[str, Optional[float]] = dataclasses.field(default_factory=dict)  # noqa: UP006, UP045
    # Longest stretch with no section open (from init, or from the last end_section); null = never fires.
    rank_out_of_section_timeout: Optional[float] = None  # noqa: UP045
    # Longest a rank may keep running after it ended monitoring, once every other local rank has ended
    # monitoring or exited (a teardown deadlock, a non-daemon thread); then it is reported and killed.
    rank_exit_timeout: Optional[float] = 300.0  # noqa: UP045
    # Multiplier on the observed maximum intervals when timeouts are calculated.
    safety_factor: float = 5.0
    # No calculated timeout is set below this (seconds): a millisecond step x safety_factor would
    # otherwise give a timeout that a GC pause or a busy file system exceeds.
    calculated_timeout_floor: float = 10.0
    # How often the monitor checks the deadlines; detection latency is at most this much past the timeout.
    workload_check_interval: float = 0.25
    # Signal that ends a hung rank once the grace period after SIGTERM has passed.
    rank_termination_signal: str = "SIGKILL"
    # Seconds a worker group gets between SIGTERM and rank_termination_signal when it is torn down.
    rank_termination_grace: float = 1.0
    # Training loop: calculate timeouts from observed intervals (after the first checkpoint save
    # plus calibration_steps more steps) and keep them in every checkpoint.
    calibrate: bool = False
    calibration_steps: int = 5
    # Log level of the monitor and client loggers.
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        validate(dataclasses.asdict(self))
        for key in (*OPTIONAL_SECONDS, SECTION_TIMEOUTS):  # one spelling of "never" from here on: None
            setattr(self, key, _normalise(key, getattr(self, key)))

    # ----------------------------------------------------------------- conversions
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> FaultToleranceConfig:
        """Build from a dict or DictConfig of keys (missing keys take defaults); validates everything."""
        return cls().with_changes(_plain(data or {}))

    def with_changes(self, changes: Mapping[str, Any]) -> FaultToleranceConfig:
        """Return a copy with ``changes`` applied; unknown keys and bad values raise FaultToleranceConfigError."""
        changes = _plain(changes)
        _check_known(changes)
        merged = {**dataclasses.asdict(self), **changes}
        validate(merged)
        return FaultToleranceConfig(**{k: _normalise(k, v) for k, v in merged.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every key."""
        return dataclasses.asdict(self)

    @property
    def termination_signal(self) -> signal.Signals:
        return _signal(self.rank_termination_signal)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(FaultToleranceConfig))
_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(FaultToleranceConfig)}


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


def _check_known(changes: Mapping[str, Any]) -> None:
    for key in changes:
        if key not in FIELD_NAMES:
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
    """Refuse bad values with a message naming the key and the value."""
    _check_known(values)
    sections = values.get(SECTION_TIMEOUTS)
    if not isinstance(sections, Mapping):
        raise FaultToleranceConfigError(
            f"fault_tolerance.{SECTION_TIMEOUTS}: expected a mapping of section name to seconds, got {sections!r}"
        )
    checks = [(key, values.get(key)) for key in OPTIONAL_SECONDS]
    checks += [(f"{SECTION_TIMEOUTS}.{name}", value) for name, value in sections.items()]
    for key, value in checks:
        _check_optional_seconds(key, value)
    for key, minimum, strict in (
        ("safety_factor", 1.0, False),
        ("calculated_timeout_floor", 0.0, True),
        ("workload_check_interval", 0.0, True),
        ("rank_termination_grace", 0.0, False),
    ):
        value = values.get(key)
        if not _is_number(value) or math.isnan(value) or math.isinf(value):
            raise FaultToleranceConfigError(f"fault_tolerance.{key}: expected a finite number, got {value!r}")
        if value < minimum or (strict and value == minimum):
            relation = ">" if strict else ">="
            raise FaultToleranceConfigError(f"fault_tolerance.{key}: must be {relation} {minimum:g}, got {value!r}")
    steps = values.get("calibration_steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise FaultToleranceConfigError(
            f"fault_tolerance.calibration_steps: expected a whole number >= 1, got {steps!r}"
        )
    for key in ("enabled", "calibrate"):
        if not isinstance(values.get(key), bool):
            raise FaultToleranceConfigError(f"fault_tolerance.{key}: expected true or false, got {values.get(key)!r}")
    _signal(values.get("rank_termination_signal"))
    level = str(values.get("log_level", "")).upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise FaultToleranceConfigError(
            f"fault_tolerance.log_level: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {values.get('log_level')!r}"
        )


def _check_optional_seconds(key: str, value: Any) -> None:
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


def _normalise(key: str, value: Any) -> Any:
    if key == SECTION_TIMEOUTS:
        return {str(name): _normalise(TIMEOUT_KEYS[0], seconds) for name, seconds in value.items()}
    if key in OPTIONAL_SECONDS and value is not None:
        return None if value == math.inf else float(value)
    if key in ("safety_factor", "calculated_timeout_floor", "workload_check_interval", "rank_termination_grace"):
        return float(value)
    if key == "rank_termination_signal":
        return _signal(value).name
    if key == "log_level":
        return str(value).upper()
    return value


# --------------------------------------------------------------------------- loaders
def load_yaml_section(path: str | Path) -> dict[str, Any]:
    """Read the ``fault_tolerance:`` section of a YAML file (top level or nested anywhere)."""
    path = Path(path)
    if not path.exists():
        raise FaultToleranceConfigError(f"--ft-cfg-path: file not found: {path}")
    if not path.is_file():
        raise FaultToleranceConfigError(f"--ft-cfg-path: {path} is not a regular file; give a YAML file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise FaultToleranceConfigError(f"--ft-cfg-path: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FaultToleranceConfigError(f"--ft-cfg-path: {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                                        f"at offset {exc.start}); save it as UTF-8") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FaultToleranceConfigError(f"--ft-cfg-path: {path} is not valid YAML: {exc}") from None
    section = _find_section(document)
    if section is None:
        raise FaultToleranceConfigError(f"--ft-cfg-path: {path} has no 'fault_tolerance:' section")
    if not isinstance(section, Mapping):
        raise FaultToleranceConfigError(f"--ft-cfg-path: 'fault_tolerance' in {path} must be a mapping")
    section = dict(section)
    _check_known(section)
    validate({**dataclasses.asdict(FaultToleranceConfig()), **section})
    return section


def _find_section(node: Any) -> Any:
    if isinstance(node, Mapping):
        if "fault_tolerance" in node:
            return node["fault_tolerance"]
        for child in node.values():
            found = _find_section(child)
            if found is not None:
                return found
    return None


def parse_cli_value(key: str, text: str | None) -> Any:
    """Convert one ``--ft-<key>`` string into the typed value (``null``/``none``/empty = None)."""
    if key not in FIELD_NAMES:
        _check_known({key: text})
    kind = str(_FIELD_TYPES[key])
    raw = "" if text is None else str(text).strip()
    if key == SECTION_TIMEOUTS:
        return _parse_sections(raw)
    if "bool" in kind:
        if raw.lower() in _TRUE_WORDS:
            return True
        if raw.lower() in _FALSE_WORDS:
            return False
        raise FaultToleranceConfigError(f"--ft-{key.replace('_', '-')}: expected true or false, got {text!r}")
    if "float" in kind or "int" in kind:
        if key in OPTIONAL_SECONDS and raw.lower() in _NULL_WORDS:
            return None
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise FaultToleranceConfigError(
                f"fault_tolerance.{key}: expected a number, got {text!r}"
                + ("; use null for infinite" if key in OPTIONAL_SECONDS else "")
            ) from None
    return raw


def _parse_sections(raw: str) -> dict[str, float | None]:
    """``init:600,step:30,checkpoint:null`` (or a YAML/JSON mapping) from a --ft-rank-section-timeouts flag."""
    text = raw if raw.startswith("{") else "{" + raw.replace(":", ": ") + "}"
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, Mapping):
        raise FaultToleranceConfigError(
            f"fault_tolerance.{SECTION_TIMEOUTS}: expected name:seconds pairs such as 'init:600,step:30', got {raw!r}"
        )
    values = {str(name): (None if str(v).lower() in _NULL_WORDS else v) for name, v in parsed.items()}
    for name, value in values.items():
        _check_optional_seconds(f"{SECTION_TIMEOUTS}.{name}", value)
    return values


def parse_cli_values(values: Mapping[str, str | None]) -> dict[str, Any]:
    """Convert ``{key: string}`` from ``--ft-*`` flags, validating each against the schema."""
    parsed = {key: parse_cli_value(key, text) for key, text in values.items()}
    validate({**dataclasses.asdict(FaultToleranceConfig()), **parsed})
    return parsed


# --------------------------------------------------------------------------- Hydra
def register_configs() -> None:
    """Store the schema in Hydra's ConfigStore as ``fault_tolerance/schema`` (idempotent).

    Every ``conf/fault_tolerance/*.yaml`` lists ``schema`` first in its defaults, so typos in keys
    and ill-typed values are refused at composition, before any worker starts.
    """
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="fault_tolerance", name="schema", node=FaultToleranceConfig)
