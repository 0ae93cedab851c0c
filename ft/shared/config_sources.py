"""Read fault-tolerance settings from a YAML file (``--ft-cfg-path``) and from ``--ft-*`` strings.

Each loader returns a plain mapping of the keys it found, validated against the schema, so the
launcher can layer them over the composed config and remember where each value came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ft.shared.config import (
    DEFAULTS,
    SECTION_TIMEOUTS,
    SETTINGS,
    FaultToleranceConfigError,
    check_known,
    check_optional_seconds,
    validate,
)

_NULL_WORDS = {"", "null", "none", "~", "inf", "infinity"}
_TRUE_WORDS = {"true", "yes", "1", "on"}
_FALSE_WORDS = {"false", "no", "0", "off"}


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
    check_known(section)
    validate({**DEFAULTS, **section})
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
    if key not in SETTINGS:
        check_known({key: text})
    rule = SETTINGS[key].rule
    raw = "" if text is None else str(text).strip()
    if rule == "sections":
        return _parse_sections(raw)
    if rule == "bool":
        if raw.lower() in _TRUE_WORDS:
            return True
        if raw.lower() in _FALSE_WORDS:
            return False
        raise FaultToleranceConfigError(f"--ft-{key.replace('_', '-')}: expected true or false, got {text!r}")
    if rule in ("seconds", "number", "count"):
        if rule == "seconds" and raw.lower() in _NULL_WORDS:
            return None
        try:
            return int(raw) if rule == "count" else float(raw)
        except ValueError:
            raise FaultToleranceConfigError(
                f"fault_tolerance.{key}: expected a number, got {text!r}"
                + ("; use null for infinite" if rule == "seconds" else "")
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
        check_optional_seconds(f"{SECTION_TIMEOUTS}.{name}", value)
    return values


def parse_cli_values(values: Mapping[str, str | None]) -> dict[str, Any]:
    """Convert ``{key: string}`` from ``--ft-*`` flags, validating each against the schema."""
    parsed = {key: parse_cli_value(key, text) for key, text in values.items()}
    validate({**DEFAULTS, **parsed})
    return parsed
