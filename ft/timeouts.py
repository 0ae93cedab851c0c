"""Heartbeat timeouts: the value type, the rule that merges calibrations, and their state dict.

Merge rule: a new calibration never lowers a calculated timeout. For each of ``initial`` and
``subsequent`` the result is ``max(previous calculated value, measured max interval x safety_factor,
MIN_CALCULATED_TIMEOUT)``. A run that once needed a long gap (a slow checkpoint save, a slow
validation) keeps that allowance in every later run that loads the state dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ft.errors import RankMonitorStateError

STATE_FORMAT = "pulsetrain.ft.heartbeat_timeouts"
STATE_VERSION = 1
# Floor for calculated timeouts: a run whose steps take milliseconds would otherwise get a
# timeout shorter than ordinary scheduling noise (and a resume's checkpoint load).
MIN_CALCULATED_TIMEOUT = 1.0


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
    previous: HeartbeatTimeouts | None, initial_interval: float, max_gap: float, safety_factor: float
) -> HeartbeatTimeouts:
    """Apply the merge rule (module docstring) to measured intervals in seconds."""
    initial = max(initial_interval * safety_factor, MIN_CALCULATED_TIMEOUT)
    subsequent = max(max_gap * safety_factor, MIN_CALCULATED_TIMEOUT)
    if previous is not None and previous.were_calculated:
        initial = max(initial, previous.initial or 0.0)
        subsequent = max(subsequent, previous.subsequent or 0.0)
    return HeartbeatTimeouts(initial=initial, subsequent=subsequent, were_calculated=True)


def to_state_dict(calculated: HeartbeatTimeouts | None) -> dict[str, Any]:
    """Versioned, JSON-serialisable; only calculated values are persisted (config values stay config's)."""
    return {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "calculated": None
        if calculated is None
        else {"initial": calculated.initial, "subsequent": calculated.subsequent},
    }


def from_state_dict(state: Any) -> HeartbeatTimeouts | None:
    """Parse a state dict from :func:`to_state_dict`; ``None`` when it holds no calculated timeouts."""
    if not isinstance(state, Mapping):
        raise RankMonitorStateError(
            f"heartbeat state must be a dict from RankMonitorClient.state_dict(), got {type(state).__name__}"
        )
    if state.get("format") != STATE_FORMAT:
        raise RankMonitorStateError(
            f"not a heartbeat-timeouts state dict (format {state.get('format')!r}, expected {STATE_FORMAT!r})"
        )
    version = state.get("version")
    if version != STATE_VERSION:
        raise RankMonitorStateError(
            f"heartbeat state version {version!r} is not supported (this pulsetrain reads version "
            f"{STATE_VERSION}); drop the 'ft' entry from the checkpoint to recalibrate"
        )
    unknown = set(state) - {"format", "version", "calculated"}
    if unknown:
        raise RankMonitorStateError(f"heartbeat state has unknown keys: {sorted(unknown)}")
    calculated = state.get("calculated")
    if calculated is None:
        return None
    if not isinstance(calculated, Mapping) or set(calculated) != {"initial", "subsequent"}:
        raise RankMonitorStateError(
            f"heartbeat state 'calculated' must hold exactly 'initial' and 'subsequent', got {calculated!r}"
        )
    values = {key: check_seconds(calculated[key], f"calculated.{key}") for key in ("initial", "subsequent")}
    return HeartbeatTimeouts(values["initial"], values["subsequent"], were_calculated=True)


def check_seconds(value: Any, name: str) -> float:
    """A finite, positive number of seconds, or RankMonitorStateError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise RankMonitorStateError(f"heartbeat timeout {name} must be a positive number of seconds, got {value!r}")
    return float(value)
