"""What happened in a run, read back from the files it left in its run directory.

Sources, all optional: ``metrics.jsonl`` (or ``metrics.csv``) written by rank 0 (losses, and the
events ``attempt_start``, ``checkpoint``, ``fault_injected``, ``stopped_on_request``, ``straggler``), the ranks'
``train_rank<N>.log`` (the line each injected fault writes before it fires), and ``stacks/`` from
``ft_launcher`` (a non-empty ``stacks-rank<R>-attempt<K>.txt`` is a rank found hung; its time is
when the launcher asked for the stacks). ``train.tools.report`` draws these marks.
"""

from __future__ import annotations

import csv
import datetime
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FAULT_LINE = re.compile(r"^\[(?P<time>[\d-]+ [\d:,]+)\]\[rank (?P<rank>\d+)\].*injected fault '(?P<kind>\w+)' "
                         r"on rank \d+ at step (?P<step>\d+) \(attempt (?P<attempt>\d+)\)")
_STACK_FILE = re.compile(r"^stacks-rank(?P<rank>\d+)-attempt(?P<attempt>\d+)\.txt$")


@dataclass(frozen=True)
class Mark:
    """One thing that happened: what, at which step and wall-clock time, in which attempt, on which rank."""

    kind: str  # "checkpoint" | "fault" | "detection" | "restart" | "stop" | "straggler"
    step: int | None
    time: float
    attempt: int
    rank: int | None = None
    detail: str = ""


@dataclass
class RunRecords:
    """Curves and marks of one run, in time order."""

    losses: list[tuple[int, float, int]] = field(default_factory=list)  # (step, loss, attempt)
    val_losses: list[tuple[int, float, int]] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    attempts: dict[int, tuple[float, float, int, int]] = field(default_factory=dict)  # first/last time, first/last step

    def of_kind(self, kind: str) -> list[Mark]:
        return [m for m in self.marks if m.kind == kind]


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The metric records of a run: ``metrics.jsonl``, else ``metrics.csv`` regrouped into one dict per row group."""
    jsonl = run_dir / "metrics.jsonl"
    if jsonl.exists():
        return [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    table = run_dir / "metrics.csv"
    if not table.exists():
        return []
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    with table.open(newline="") as f:
        for row in csv.DictReader(f):
            record = grouped.setdefault((row["step"], row["time"], row["attempt"]), {
                "step": int(row["step"]), "time": float(row["time"]), "attempt": int(row["attempt"])})
            value: Any = row["value"]
            try:
                value = float(value)
            except ValueError:
                pass
            record[row["name"]] = value
    return list(grouped.values())


def _log_time(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def read_run(run_dir: str | Path) -> RunRecords:
    """Everything :mod:`train.tools.report` draws, from ``run_dir``'s own files."""
    run_dir = Path(run_dir)
    records = RunRecords()
    faults_seen: set[tuple[int, int]] = set()
    for m in read_metrics(run_dir):
        step, when, attempt = int(m["step"]), float(m["time"]), int(m.get("attempt", 0))
        event = m.get("event")
        first, last, s0, s1 = records.attempts.get(attempt, (when, when, step, step))
        done = step - 1 if event == "fault_injected" else step  # the fault fires before its step runs
        records.attempts[attempt] = (min(first, when), max(last, when), min(s0, done), max(s1, done))
        if event == "checkpoint":
            records.marks.append(Mark("checkpoint", step, when, attempt))
        elif event == "attempt_start":
            records.marks.append(Mark("restart", step, when, attempt,
                                      detail=f"attempt {attempt} resumed from step {int(m['resumed_from'])}"))
        elif event == "fault_injected":
            faults_seen.add((attempt, step))
            records.marks.append(Mark("fault", step, when, attempt, int(m["rank"]), str(m["kind"])))
        elif event == "stopped_on_request":
            records.marks.append(Mark("stop", step, when, attempt))
        elif event == "straggler":
            records.marks.append(Mark("straggler", step, when, attempt, int(m["rank"]), f"{float(m['ratio']):.2f}x"))
        if "loss" in m and event is None:
            records.losses.append((step, float(m["loss"]), attempt))
        if "val_loss" in m:
            records.val_losses.append((step, float(m["val_loss"]), attempt))
    for log_file in sorted(run_dir.glob("train_rank*.log")):  # faults rank 0's metrics could not announce
        for line in log_file.read_text(errors="replace").splitlines():
            found = _FAULT_LINE.match(line)
            if found and (int(found["attempt"]), int(found["step"])) not in faults_seen:
                faults_seen.add((int(found["attempt"]), int(found["step"])))
                records.marks.append(Mark("fault", int(found["step"]), _log_time(found["time"]), int(found["attempt"]),
                                          int(found["rank"]), found["kind"]))
    for stack in sorted((run_dir / "stacks").glob("stacks-rank*-attempt*.txt")):
        found = _STACK_FILE.match(stack.name)
        if found and stack.stat().st_size > 0:  # the launcher creates every rank's file; a dump fills a hung one's
            records.marks.append(Mark("detection", None, stack.stat().st_mtime, int(found["attempt"]),
                                      int(found["rank"]), "hang detected"))
    records.marks.sort(key=lambda m: m.time)
    return records
