"""Calibrated timeouts kept next to the checkpoints: read before monitoring starts, written after each save.

A restarted rank restores them before ``init_workload_monitoring()`` without reading a whole
checkpoint; timeouts measured on another world size or config are dropped with a warning.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ft import RankMonitorClient, RankMonitorStateError, timeouts_from_state_dict, write_json_atomic

log = logging.getLogger("train.fault_tolerance")

STATE_FILE = "ft_state.json"


def read(path: Path) -> dict[str, Any] | None:
    """The saved client state at ``path``, or None (missing, unreadable or invalid: said once, then ignored)."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s); timeouts come from the config", path, exc)
        return None
    try:
        timeouts_from_state_dict(state)
    except RankMonitorStateError as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
    return state


def write(path: Path, state: dict[str, Any] | None) -> None:
    if state is not None:
        write_json_atomic(path, state)


def restore(client: RankMonitorClient, state: dict[str, Any], measured_on: dict[str, Any] | None,
            where: str) -> None:
    """Load ``state`` into ``client`` unless it was measured on another world size or config."""
    saved_on = state.get("measured_on")
    if saved_on is not None and measured_on is not None and saved_on != measured_on:
        log.warning("dropping the calculated timeouts in %s: they were measured on world size %s, config %s; "
                    "this run is world size %s, config %s. Timeouts come from the config until recalibrated",
                    where, saved_on.get("world_size"), saved_on.get("config"),
                    measured_on.get("world_size"), measured_on.get("config"))
        return
    client.load_state_dict(state)
