"""One sweep point: what runs it, and ``point.json``, its record in its run directory.

``point.json`` is written when the point starts (status ``running``) and when it ends (``finished``,
``stopped``, ``failed``); a relaunched sweep skips the points whose record says ``finished`` and
reruns the others in the same directory, so they resume from their checkpoints. The record keeps
the point's overrides: a directory that holds another point's run is refused, never mixed up.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ft import write_json_atomic
from launcher.job.outcome import Outcome
from launcher.planning.multirun import key_of, non_sweep

FILE_NAME = "point.json"


@dataclass
class SweepPoint:
    """A point of the sweep and the ft_launcher command that runs it as a fault-tolerant job."""

    number: int
    overrides: list[str]
    run_dir: Path
    command: list[str]
    metric: str | None = None  # the point's trainer.optimized_metric
    shown: list[str] | None = None  # the overrides that tell it from the other points (default: all)
    program: str | None = None  # digest of the script or module it runs (program_digest)

    @property
    def label(self) -> str:
        shown = self.overrides if self.shown is None else self.shown
        return " ".join(o for o in shown if not o.lstrip("+~").startswith("hydra.")) or f"#{self.number}"


def shown_overrides(overrides: list[str], command_line: list[str]) -> list[str]:
    """A point's overrides less the keys the command line gives one value for (the same in every point)."""
    fixed = {key_of(o) for o in non_sweep(command_line)}
    return [o for o in overrides if key_of(o) not in fixed]


@dataclass
class PointResult:
    point: SweepPoint
    outcome: Outcome
    exit_code: int | None = None
    started_at: float | None = None  # wall clock (time.time()), so points can be compared
    ended_at: float | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


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
            "written_at": round(time.time(), 3), **({"program": point.program} if point.program else {}), **values}
    write_json_atomic(path, data)


def earlier_run(point: SweepPoint) -> tuple[dict[str, Any] | None, str | None]:
    """The point's record from an earlier run of the sweep, and why the point cannot run (or None)."""
    record = read(point.run_dir)
    if record and record.get("overrides") != point.overrides:
        return record, (f"{point.run_dir} holds the run of another point ({' '.join(record.get('overrides', []))}); "
                        "use a new hydra.sweep.dir, or the same overrides as the earlier run")
    if record and record.get("status") == "finished" and record.get("program", point.program) != point.program:
        # Another version of the app finished it: as Hydra would, run it again (it resumes in its directory).
        return {**record, "status": "finished by another version of its program"}, None
    return record, None


def program_digest(program: list[str]) -> str | None:
    """A digest of the file a point runs (``[script]`` or ``["-m", module]``), None when there is no such file."""
    path: str | None = program[-1]
    if program[0] in ("-m", "--module"):
        try:
            spec = importlib.util.find_spec(program[-1])
        except (ImportError, ValueError):
            spec = None
        path = spec.origin if spec is not None else None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if path else None
    except OSError:
        return None
