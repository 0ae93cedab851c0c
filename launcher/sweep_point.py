"""One sweep point: what runs it, and ``point.json``, its record in its run directory.

``point.json`` is written when the point starts (status ``running``) and when it ends (``finished``,
``stopped``, ``failed``); a relaunched sweep skips the points whose record says ``finished`` and
reruns the others in the same directory, so they resume from their checkpoints. The record keeps
the point's overrides: a directory that holds another point's run is refused, never mixed up.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ft import ExitCode, write_json_atomic

FILE_NAME = "point.json"


class Outcome(str, enum.Enum):
    """How a point ended in this sweep run."""

    FINISHED = "finished"
    ALREADY_FINISHED = "already finished"  # by an earlier run of the same sweep: skipped
    STOPPED = "stopped"  # on request, checkpoint saved: the next run of the sweep resumes it
    NOT_STARTED = "not started"  # the sweep was stopped first
    FAILED = "failed"
    BAD_INPUT = "bad input"  # exit 2, or its directory holds another point's run


@dataclass
class SweepPoint:
    """A point of the sweep and the ft_launcher command that runs it as a fault-tolerant job."""

    number: int
    overrides: list[str]
    run_dir: Path
    command: list[str]
    metric: str | None = None  # the point's trainer.optimized_metric
    shown: list[str] | None = None  # the overrides that tell it from the other points (default: all)

    @property
    def label(self) -> str:
        shown = self.overrides if self.shown is None else self.shown
        return " ".join(o for o in shown if not o.lstrip("+~").startswith("hydra.")) or f"#{self.number}"


@dataclass
class PointResult:
    point: SweepPoint
    outcome: Outcome
    exit_code: int | None = None
    started_at: float | None = None  # wall clock (time.time()), so points can be compared
    ended_at: float | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def outcome_of(code: int) -> Outcome:
    return {ExitCode.FINISHED: Outcome.FINISHED, ExitCode.STOPPED_ON_REQUEST: Outcome.STOPPED,
            ExitCode.USAGE_ERROR: Outcome.BAD_INPUT}.get(code, Outcome.FAILED)


def read(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / FILE_NAME).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treated as a point that did not finish


def write(point: SweepPoint, status: str, **values: Any) -> None:
    """Replace the record in one rename (a reader never sees half of it)."""
    point.run_dir.mkdir(parents=True, exist_ok=True)
    path = point.run_dir / FILE_NAME
    data = {"number": point.number, "overrides": point.overrides, "status": status,
            "written_at": round(time.time(), 3), **values}
    write_json_atomic(path, data)


def earlier_run(point: SweepPoint) -> tuple[dict[str, Any] | None, str | None]:
    """The point's record from an earlier run of the sweep, and why the point cannot run (or None)."""
    record = read(point.run_dir)
    if record and record.get("overrides") != point.overrides:
        return record, (f"{point.run_dir} holds the run of another point ({' '.join(record.get('overrides', []))}); "
                        "use a new hydra.sweep.dir, or the same overrides as the earlier run")
    return record, None
