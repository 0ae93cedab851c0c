"""The sweep summary: ``sweep_summary.json`` in the sweep directory and a table, one row per point.

Per point: its overrides, outcome, attempts and each fault's detection delay (from every
``ft_launches.jsonl`` line the point's launches left), time lost to faults, the optimised metric
(from ``final_metrics.json``) and the run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ft import final_metrics, write_json_atomic
from launcher.records import launch_log
from launcher.records.report import table
from launcher.sweeps.point import PointResult

FILE_NAME = "sweep_summary.json"


def point_summary(result: PointResult) -> dict[str, Any]:
    point = result.point
    launches = launch_log.read(point.run_dir)
    attempts = [a for launch in launches for a in launch.get("attempts", [])]
    detections = [a["detection"] for a in attempts if a.get("detection")]
    value, metric_error = None, None
    try:
        value = final_metrics.optimized_value(point.run_dir, point.metric) if result.exit_code == 0 else None
    except final_metrics.MetricNotFoundError as exc:
        metric_error = str(exc)
    return {"number": point.number, "point": point.label, "overrides": point.overrides, "outcome": result.outcome.value,
            "exit_code": result.exit_code, "attempts": len(attempts), "launches": len(launches),
            "causes": [a["cause"] for a in attempts if a.get("outcome") == "failed"],
            "detections": detections, "time_lost": round(sum(x.get("time_lost", 0.0) for x in launches), 3),
            "metric": point.metric, "value": value, "metric_error": metric_error,
            "started_at": result.started_at, "ended_at": result.ended_at, "run_dir": str(point.run_dir),
            "message": result.message}


def write(sweep_dir: Path, rows: list[dict[str, Any]], code: int) -> Path:
    """Replace ``sweep_summary.json`` in one rename."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / FILE_NAME
    write_json_atomic(path, {"sweep_dir": str(sweep_dir), "exit_code": code, "points": rows})
    return path


def show(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    metric = next((r["metric"] for r in rows if r["metric"]), None)
    columns = ["#", "point", "outcome", "attempts", "detection delay (timeout)", "time lost",
               metric or "metric", "run dir"]
    table(f"sweep summary ({sweep_dir})", columns, [_cells(row, sweep_dir) for row in rows])


def _cells(row: dict[str, Any], sweep_dir: Path) -> list[str]:
    delays = ", ".join(f"{d['gap']:.1f} s ({_seconds(d['timeout'])})" for d in row["detections"]) or "-"
    value = "-" if row["value"] is None else f"{row['value']:.4g}"
    if row["metric_error"]:
        value = "missing"
    run_dir = Path(row["run_dir"])
    shown = str(run_dir.relative_to(sweep_dir)) if run_dir.is_relative_to(sweep_dir) else str(run_dir)
    return [str(row["number"]), row["point"], row["outcome"], str(row["attempts"]), delays,
            f"{row['time_lost']:.1f} s", value, shown]


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g} s"
