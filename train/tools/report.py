"""``python -m train.tools.report RUN_DIR``: one PNG of a run: the loss over steps, and under it a timeline of
attempts with faults, detections, restarts, checkpoints and stragglers named, at their real steps
(``pip install pulsetrain[report]``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train.tools.run_records import RunRecords, read_run

FIGSIZE, DPI = (10.0, 7.0), 100  # 1000 x 700 pixels
_STYLE = {  # kind -> (marker, colour, label)
    "checkpoint": ("|", "black", "checkpoint"),
    "fault": ("X", "red", "fault injected"),
    "detection": ("D", "darkorange", "hang detected"),
    "restart": ("^", "green", "attempt start / resume"),
    "stop": ("s", "purple", "stopped on request"),
    "straggler": ("v", "saddlebrown", "straggler named"),
}


def draw(records: RunRecords, out: Path, title: str = "") -> Path:
    """Write the picture of ``records`` to ``out`` (PNG, FIGSIZE at DPI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curve, timeline) = plt.subplots(2, 1, figsize=FIGSIZE, dpi=DPI, height_ratios=[3, 2])
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for attempt in sorted({a for _, _, a in records.losses}):
        points = [(s, v) for s, v, a in records.losses if a == attempt]
        curve.plot([s for s, _ in points], [v for _, v in points], color=colours[attempt % len(colours)], label=f"loss, attempt {attempt}")
    if records.val_losses:
        curve.plot([s for s, _, _ in records.val_losses], [v for _, v, _ in records.val_losses], "o--",
                   color="grey", label="val_loss")
    for mark in records.marks:
        if mark.kind in ("fault", "restart") and mark.step is not None and (mark.kind == "fault" or mark.attempt > 0):
            colour = _STYLE[mark.kind][1]
            curve.axvline(mark.step, color=colour, linestyle=":")
            text = (f"{mark.detail} on rank {mark.rank} at step {mark.step}" if mark.kind == "fault"
                    else f"resumed at step {mark.step}")
            curve.annotate(text, (mark.step, 1), xycoords=("data", "axes fraction"), rotation=90, va="top",
                           ha="right", fontsize=8, color=colour)
    curve.set_xlabel("step")
    curve.set_ylabel("loss")
    curve.legend(fontsize=8, loc="upper right")
    curve.set_title(title or "training run")

    start = min([t for t, _, _, _ in records.attempts.values()] + [m.time for m in records.marks], default=0.0)
    for attempt, (first, last, s0, s1) in sorted(records.attempts.items()):
        last = max([last] + [m.time for m in records.marks if m.attempt == attempt])
        timeline.barh(attempt, last - first, left=first - start, height=0.4, color=colours[attempt % len(colours)],
                      alpha=0.5)
        timeline.text(last - start, attempt, f"  steps {s0}-{s1}", va="center", fontsize=8)
    _draw_lost_time(timeline, records, start)
    seen: set[str] = set()
    stacked: dict[tuple[str, int], int] = {}  # marks of one kind in one attempt: labels one under the other
    for mark in records.marks:
        marker, colour, label = _STYLE[mark.kind]
        timeline.scatter(mark.time - start, mark.attempt, marker=marker, color=colour, s=80, zorder=3,
                         label=None if label in seen else label)
        seen.add(label)
        if mark.kind == "checkpoint":
            text, offset = f"{mark.step}", 8
        else:
            n = stacked[(mark.kind, mark.attempt)] = stacked.get((mark.kind, mark.attempt), -1) + 1
            text = f"step {mark.step}" if mark.step is not None else f"rank {mark.rank}"
            text = f"rank {mark.rank} {mark.detail}" if mark.kind == "straggler" else text
            offset = -14 - 9 * n
        timeline.annotate(text, (mark.time - start, mark.attempt), textcoords="offset points",
                          xytext=(0, offset), ha="center", fontsize=7, color=colour)
    timeline.set_yticks(sorted(records.attempts) or [0])
    timeline.set_yticklabels([f"attempt {a}" for a in sorted(records.attempts)] or ["attempt 0"])
    timeline.set_ylim(-0.7, max(records.attempts, default=0) + 1.3)  # room below the bars for the legend
    timeline.invert_yaxis()
    timeline.set_xlabel("seconds since the run started")
    timeline.legend(fontsize=8, loc="lower right", ncols=3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def _draw_lost_time(timeline, records: RunRecords, start: float) -> None:
    """Shade what a fault cost: from the fault to its detection, and from there to the next attempt's start."""
    for fault in records.of_kind("fault"):
        found = [m for m in records.of_kind("detection") if m.attempt == fault.attempt and m.time >= fault.time]
        restarts = [m for m in records.of_kind("restart") if m.attempt > fault.attempt and m.time >= fault.time]
        end_hang = min((m.time for m in found), default=None)
        if end_hang is not None:
            timeline.axvspan(fault.time - start, end_hang - start, color="red", alpha=0.12)
            timeline.text((fault.time + end_hang) / 2 - start, fault.attempt - 0.35,
                          f"hung {end_hang - fault.time:.1f} s", ha="center", fontsize=7, color="red")
        if restarts:
            since = end_hang if end_hang is not None else fault.time
            timeline.axvspan(since - start, restarts[0].time - start, color="grey", alpha=0.12)
            timeline.text((since + restarts[0].time) / 2 - start, fault.attempt + 0.5,
                          f"restart {restarts[0].time - since:.1f} s", ha="center", fontsize=7, color="dimgrey")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.tools.report", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, help="PNG to write (default: RUN_DIR/run_report.png)")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        parser.error(f"{args.run_dir} is not a directory")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("train.tools.report needs matplotlib: pip install 'pulsetrain[report]'", file=sys.stderr)
        return 2
    records = read_run(args.run_dir)
    if not records.losses:
        print(f"{args.run_dir}: no losses logged (metrics.jsonl or metrics.csv)", file=sys.stderr)
        return 2
    out = draw(records, args.out or args.run_dir / "run_report.png", title=args.run_dir.name)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
