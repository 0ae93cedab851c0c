"""The effective fault-tolerance settings, layered by precedence, with the source of every key.

Lowest to highest: schema defaults → the composed Hydra config (conf/ plus the script's overrides)
→ ``--ft-cfg-path`` → ``--ft-*`` flags. Keys set by the last two are appended to a Hydra script's
arguments as ``fault_tolerance.<key>=<value>``, so the workers' ``cfg.fault_tolerance`` shows
exactly what the monitor enforces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ft.shared.config import FIELD_NAMES, FaultToleranceConfig, FaultToleranceConfigError
from ft.shared.config_sources import load_yaml_section, parse_cli_values
from launcher.cli.args import UsageError

SECTION = "fault_tolerance"


@dataclass
class FtSettings:
    """What the monitor enforces, where each value came from, and what to tell the workers."""

    config: FaultToleranceConfig
    sources: dict[str, str]
    worker_overrides: list[str] = field(default_factory=list)
    # False when the script's config has no fault_tolerance section: workers cannot be told.
    in_script_config: bool = False


def _override_sources(overrides: list[str]) -> dict[str, str]:
    """Keys of ``fault_tolerance`` set by command-line overrides, named as the user typed them."""
    found: dict[str, str] = {}
    for text in overrides:
        match = re.match(r"^[+~]{0,2}fault_tolerance\.(\w+)(\.[\w-]+)?=", text)
        if match:  # a group choice (fault_tolerance=demo) shows as that option's file instead
            found[match.group(1)] = f"override {text}"
            if match.group(2):  # one section of rank_section_timeouts: its own source too
                found[match.group(1) + match.group(2)] = f"override {text}"
    return found


def format_value(value: Any) -> str:
    """A value as a Hydra override understands it (None → null)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ",".join(f"{name}:{format_value(seconds)}" for name, seconds in value.items()) + "}"
    return str(value)


def resolve(composed: Any | None, overrides: list[str], config_file: str | None, ft_cfg_path: str | None,
            ft_flags: dict[str, str], flag_spelling: dict[str, str]) -> FtSettings:
    """Layer every source; bad values raise UsageError with the FaultToleranceConfigError message."""
    sources = dict.fromkeys(FIELD_NAMES, "default")
    config = FaultToleranceConfig()
    in_script = composed is not None
    try:
        if composed is not None:
            config = FaultToleranceConfig.from_mapping(composed)
            for key in FIELD_NAMES:
                if key in composed:
                    sources[key] = config_file or "config"
            sources.update({k: v for k, v in _override_sources(overrides).items() if k.split(".")[0] in FIELD_NAMES})
        outer: dict[str, Any] = {}
        if ft_cfg_path:
            section = load_yaml_section(ft_cfg_path)
            outer.update(section)
            sources.update(dict.fromkeys(section, f"--ft-cfg-path {ft_cfg_path}"))
        if ft_flags:
            outer.update(parse_cli_values(ft_flags))
            sources.update({key: flag_spelling.get(key, f"--ft-{key}") for key in ft_flags})
        config = config.with_changes(outer)
    except FaultToleranceConfigError as exc:
        raise UsageError(str(exc)) from None
    values = config.to_dict()
    worker_overrides = [f"{SECTION}.{key}={format_value(values[key])}" for key in outer] if in_script else []
    return FtSettings(config, sources, worker_overrides, in_script)
