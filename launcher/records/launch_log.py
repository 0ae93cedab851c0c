"""``ft_launches.jsonl`` in the run directory: one line per ft_launcher launch of that run.

Each line holds the launch's attempts (cause, outcome, the monitor's detection with its delay and the
timeout in force), the time lost to faults and the exit code. A run relaunched after a stop adds a
line, so the sweep summary can add up every attempt a point ever made.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ft import json_safe
from launcher.records.report import JobRecord

FILE_NAME = "ft_launches.jsonl"


def to_dict(record: JobRecord) -> dict[str, Any]:
    """The record with times as seconds since the launch started (and the launch's wall-clock start)."""
    now_wall, now_mono = time.time(), time.monotonic()
    attempts = []
    for attempt in record.attempts:
        item = asdict(attempt)
        for key in ("started", "ended", "first_heartbeat", "checkpointed"):
            if item[key] is not None:
                item[key] = round(item[key] - record.started, 3)
        attempts.append(item)
    return {"name": record.name, "started_at": round(now_wall - (now_mono - record.started), 3),
            "duration": round((record.ended or now_mono) - record.started, 3), "outcome": record.outcome.value,
            "exit_code": record.exit_code, "verdict": record.verdict,
            "time_lost": round(record.time_lost(), 3), "attempts": attempts}


def append(record: JobRecord) -> None:
    """Add this launch's line (one write, flushed to disk), when the job has a run directory."""
    if record.run_dir is None or not record.run_dir.is_dir():
        return
    with (record.run_dir / FILE_NAME).open("a") as f:
        f.write(json.dumps(json_safe(to_dict(record)), allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete line (a launch killed mid-write leaves at most one partial line, skipped)."""
    try:
        lines = (run_dir / FILE_NAME).read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
