"""The run's ``metrics.jsonl`` as the launcher reads it: the last checkpoint's step, straggler events.

The template's rank 0 writes the file (``logger=jsonl``, the default), one JSON object per line with
``step`` and, for events, ``event`` (``ft.MetricEvent``: ``checkpoint`` rows carry the saved step;
``straggler`` rows name a slow rank). A script that writes no such file simply has no step to name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ft import MetricEvent

FILE_NAME = "metrics.jsonl"
STRAGGLER_EVENT = "straggler"  # written by the straggler detection; read here by name only


def rows(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete row (a line cut by a crash is skipped)."""
    try:
        lines = (run_dir / FILE_NAME).read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            out.append(row)
    return out


def last_checkpoint_step(run_dir: Path) -> int | None:
    """The step of the newest ``checkpoint`` event, None when there is none."""
    steps = [row.get("step") for row in rows(run_dir) if row.get("event") == MetricEvent.CHECKPOINT.value]
    steps = [s for s in steps if isinstance(s, int)]
    return steps[-1] if steps else None


def stragglers(run_dir: Path) -> list[dict[str, Any]]:
    """The ``straggler`` event rows, oldest first."""
    return [row for row in rows(run_dir) if row.get("event") == STRAGGLER_EVENT]
