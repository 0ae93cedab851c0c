"""What ft_launcher tells people: rich logging (plain lines when not a terminal), settings and summary tables."""

from __future__ import annotations

import logging
import sys
import time

from launcher.job.outcome import Outcome
from launcher.job.record import JobRecord

log = logging.getLogger("launcher")


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_ft_launcher", False) for h in root.handlers):
        return
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[ft_launcher %(asctime)s] %(levelname)s %(message)s", "%H:%M:%S"))
    handler._ft_launcher = True  # type: ignore[attr-defined]
    handler.addFilter(_drop_monitor_event_lines)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # torch.distributed.elastic is chatty at INFO
    for name in ("launcher", "ft"):
        logging.getLogger(name).setLevel(level)


def _drop_monitor_event_lines(record: logging.LogRecord) -> bool:
    # The monitor logs each RankEvent as it finds it; the launcher logs the same event with what it
    # does about it (and the stack), so one line per event is enough.
    return record.name != "ft.monitor.events"


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal; aligned plain text otherwise (logs, CI)."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.table import Table

        grid = Table(title=title, title_justify="left")
        for column in columns:
            grid.add_column(column)
        for row in rows:
            grid.add_row(*row)
        Console(stderr=True).print(grid)
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def settings_table(values: dict, sources: dict[str, str], enabled: bool) -> None:
    rows = [[key, _fmt(value), sources.get(key, "")] for key, value in values.items()]
    table("fault tolerance (effective)", ["key", "value", "source"], rows)
    if not enabled:
        log.warning("fault_tolerance.enabled is false: no hang detection; crashes still restart the workers")
        return
    off = [key for key in ("initial_rank_heartbeat_timeout", "rank_heartbeat_timeout") if values[key] is None]
    if off:
        log.warning("%s %s null: hang detection is off until timeouts are calibrated",
                    " and ".join(off), "is" if len(off) == 1 else "are")


def _fmt(value) -> str:
    return "null" if value is None else str(value)


def summary_table(jobs: list[JobRecord]) -> None:
    rows = []
    for job in jobs:
        causes = "; ".join(f"#{a.number}: {a.cause}" for a in job.attempts if a.outcome is Outcome.FAILED) or "-"
        total = (job.ended or time.monotonic()) - job.started
        rows.append([job.name, str(len(job.attempts)), causes, f"{job.time_lost():.1f} s", f"{total:.1f} s",
                     str(job.exit_code)])
    table("ft_launcher summary", ["job", "attempts", "causes", "time lost", "total", "exit"], rows)
