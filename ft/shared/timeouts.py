"""Heartbeat and section timeouts: the value types, the rule that merges calibrations, and their state dict.

Merge rule: a new calibration never lowers a calculated timeout. For each of ``initial`` and
``subsequent`` the result is ``max(previous calculated value, measured max interval x safety_factor,
calculated_timeout_floor)``. A run that once needed a long gap (a slow checkpoint save, a slow
validation) keeps that allowance in every later run that loads the state dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ft.shared.errors import RankMonitorStateError

STATE_FORMAT = "pulsetrain.ft.heartbeat_timeouts"
STATE_VERSION = 2


@dataclass(frozen=True)
class HeartbeatTimeouts:
    """Timeouts in seconds in force for a rank; ``None`` means infinite (never fires)."""

    initial: float | None = None
    subsequent: float | None = None
    were_calculated: bool = False

    @property
    def are_valid(self) -> bool:
        """True when both timeouts are finite positive numbers (so both kinds of hang are detected)."""
        return all(
            value is not None and math.isfinite(value) and value > 0 for value in (self.initial, self.subsequent)
        )

    def to_message(self) -> dict[str, Any]:
        return {"initial": self.initial, "subsequent": self.subsequent, "calculated": self.were_calculated}


def merge_calculated(
    previous: HeartbeatTimeouts | None, initial_interval: float, max_gap: float, safety_factor: float, floor: float
) -> HeartbeatTimeouts:
    """Apply the merge rule (module docstring) to measured intervals in seconds."""
    initial = max(initial_interval * safety_factor, floor)
    subsequent = max(max_gap * safety_factor, floor)
    if previous is not None and previous.were_calculated:
        initial = max(initial, previous.initial or 0.0)
        subsequent = max(subsequent, previous.subsequent or 0.0)
    return HeartbeatTimeouts(initial=initial, subsequent=subsequent, were_calculated=True)


@dataclass(frozen=True)
class SectionTimeouts:
    """Section timeouts in force (seconds, ``None`` = never fires), as NVIDIA's client shows them."""

    section: dict[str, float | None] = field(default_factory=dict)
    out_of_section: float | None = None
    calculated_sections: dict[str, float] = field(default_factory=dict)
    is_out_of_section_calculated: bool = False


@dataclass(frozen=True)
class SavedTimeouts:
    """What a state dict holds: calculated timeouts only (configured ones come from the run's config)."""

    heartbeat: HeartbeatTimeouts | None = None
    sections: dict[str, float] = field(default_factory=dict)
    out_of_section: float | None = None
    # What the values were measured on (world size, config fingerprint); None = unknown.
    measured_on: dict[str, Any] | None = None


def to_state_dict(calculated: HeartbeatTimeouts | None, saved: SavedTimeouts | None = None) -> dict[str, Any]:
    """Versioned, JSON-serialisable; only calculated values are persisted (config values stay config's)."""
    saved = saved or SavedTimeouts()
    return {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "calculated": None
        if calculated is None
        else {"initial": calculated.initial, "subsequent": calculated.subsequent},
        "sections": dict(saved.sections),
        "out_of_section": saved.out_of_section,
        "measured_on": saved.measured_on,
    }


def from_state_dict(state: Any) -> HeartbeatTimeouts | None:
    """The calculated heartbeat timeouts of a state dict (:func:`parse_state`); ``None`` when it holds none."""
    return parse_state(state).heartbeat


def parse_state(state: Any) -> SavedTimeouts:
    """Parse a state dict from :func:`to_state_dict` (this version or version 1); garbage raises."""
    if not isinstance(state, Mapping):
        raise RankMonitorStateError(
            f"heartbeat state must be a dict from RankMonitorClient.state_dict(), got {type(state).__name__}"
        )
    if state.get("format") != STATE_FORMAT:
        raise RankMonitorStateError(
            f"not a heartbeat-timeouts state dict (format {state.get('format')!r}, expected {STATE_FORMAT!r})"
        )
    version = state.get("version")
    if version not in (1, STATE_VERSION):
        raise RankMonitorStateError(
            f"heartbeat state version {version!r} is not supported (this pulsetrain reads versions 1 and "
            f"{STATE_VERSION}); drop the 'ft' entry from the checkpoint to recalibrate"
        )
    known = {"format", "version", "calculated"} | ({"sections", "out_of_section", "measured_on"} if version > 1 else set())
    unknown = set(state) - known
    if unknown:
        raise RankMonitorStateError(f"heartbeat state has unknown keys: {sorted(unknown)}")
    heartbeat = None
    calculated = state.get("calculated")
    if calculated is not None:
        if not isinstance(calculated, Mapping) or set(calculated) != {"initial", "subsequent"}:
            raise RankMonitorStateError(
                f"heartbeat state 'calculated' must hold exactly 'initial' and 'subsequent', got {calculated!r}"
            )
        values = {key: check_seconds(calculated[key], f"calculated.{key}") for key in ("initial", "subsequent")}
        heartbeat = HeartbeatTimeouts(values["initial"], values["subsequent"], were_calculated=True)
    sections = state.get("sections") or {}
    if not isinstance(sections, Mapping):
        raise RankMonitorStateError(f"heartbeat state 'sections' must map names to seconds, got {sections!r}")
    out = state.get("out_of_section")
    measured_on = state.get("measured_on")
    if measured_on is not None and not isinstance(measured_on, Mapping):
        raise RankMonitorStateError(f"heartbeat state 'measured_on' must be a dict, got {measured_on!r}")
    return SavedTimeouts(
        heartbeat=heartbeat,
        sections={str(name): check_seconds(v, f"sections.{name}") for name, v in sections.items()},
        out_of_section=None if out is None else check_seconds(out, "out_of_section"),
        measured_on=dict(measured_on) if measured_on is not None else None,
    )


def check_seconds(value: Any, name: str) -> float:
    """A finite, positive number of seconds, or RankMonitorStateError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise RankMonitorStateError(f"heartbeat timeout {name} must be a positive number of seconds, got {value!r}")
    return float(value)
