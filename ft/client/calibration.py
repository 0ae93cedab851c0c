"""Timeout calibration: agree across ranks on the longest observed intervals, then apply the merge rule.

One all-reduce (MAX) carries readiness, the measured intervals and each rank's previous calculated
timeouts, so every rank takes the same branch and ends with the same values even when only some
ranks had loaded a state dict. The merge rule is in ft/timeouts.py.
"""

from __future__ import annotations

import logging

from ft.client.collectives import all_reduce_max
from ft.shared.errors import RankMonitorClientError
from ft.shared.timeouts import HeartbeatTimeouts, SavedTimeouts, merge_calculated

log = logging.getLogger("ft.client")


def calibrate(
    heartbeats: int,
    first_wait: float,
    max_gap: float,
    previous: HeartbeatTimeouts | None,
    safety_factor: float,
    floor: float,
    skip_if_not_ready: bool,
    rank: int,
) -> HeartbeatTimeouts | None:
    """Collective. Intervals in seconds; None when some rank is not ready and skipping is allowed."""
    previous = previous if previous is not None and previous.were_calculated else HeartbeatTimeouts()
    not_ready, first_wait, max_gap, prev_initial, prev_subsequent = all_reduce_max(
        [
            0.0 if heartbeats >= 2 else 1.0,
            first_wait,
            max_gap,
            previous.initial or 0.0,
            previous.subsequent or 0.0,
        ]
    )
    if not_ready:
        if skip_if_not_ready:
            log.debug("calibration skipped: some rank has seen fewer than two heartbeats")
            return None
        raise RankMonitorClientError(
            f"calculate_and_set_hb_timeouts() needs at least two heartbeats on every rank since "
            f"init_workload_monitoring(); this rank has {heartbeats}. Call it later in training, "
            f"or pass skip_if_not_ready=True"
        )
    agreed_previous = HeartbeatTimeouts(prev_initial or None, prev_subsequent or None, prev_subsequent > 0)
    calculated = merge_calculated(agreed_previous, first_wait, max_gap, safety_factor, floor)
    # Calibrating again is cheap and common (after every save): a line only when something changed.
    changed = (calculated.initial, calculated.subsequent) != (prev_initial, prev_subsequent)
    what = "recalculated" if agreed_previous.were_calculated else "calculated"
    log.log(
        logging.INFO if rank == 0 and changed else logging.DEBUG,
        "%s heartbeat timeouts: initial %.1f s (longest wait for a first heartbeat %.3f s x %g), "
        "per-step %.1f s (longest gap between heartbeats %.3f s x %g; floor %g s)%s",
        what, calculated.initial, first_wait, safety_factor, calculated.subsequent, max_gap, safety_factor, floor,
        f", was {prev_subsequent:.1f} s" if agreed_previous.were_calculated and changed else "",
    )  # fmt: skip
    return calculated


def calibrate_sections(
    selected: list[str],
    longest: dict[str, float],
    longest_out: float,
    calc_out_of_section: bool,
    previous: SavedTimeouts,
    safety_factor: float,
    floor: float,
    skip_if_not_ready: bool,
    rank: int,
) -> tuple[dict[str, float], float | None] | None:
    """Collective: every rank passes the same ``selected`` names. (section timeouts, out-of-section) or None.

    A section is ready once every rank has completed it at least once; out-of-section once some
    stretch without a section was seen. Values only grow (merge rule, ft/timeouts.py).
    """
    names = sorted(selected)
    unseen = [0.0 if name in longest else 1.0 for name in names]
    values = all_reduce_max([
        max(unseen, default=0.0) if names else 0.0,
        *(longest.get(name, 0.0) for name in names),
        longest_out,
        *(previous.sections.get(name, 0.0) for name in names),
        previous.out_of_section or 0.0,
    ])
    not_ready, measured = values[0], values[1 : 1 + len(names)]
    out, before = values[1 + len(names)], values[2 + len(names) : 2 + 2 * len(names)]
    out_before = values[-1]
    if not_ready or (calc_out_of_section and out <= 0.0):
        if skip_if_not_ready:
            return None
        raise RankMonitorClientError(
            f"calculate_and_set_section_timeouts(): not enough data; every rank must have completed each of "
            f"{names} at least once{' and spent time outside sections' if calc_out_of_section else ''}. Call it "
            f"later, or pass skip_if_not_ready=True"
        )
    sections = {
        name: max(seen * safety_factor, floor, old) for name, seen, old in zip(names, measured, before, strict=True)
    }
    out_timeout = max(out * safety_factor, floor, out_before) if calc_out_of_section else None
    changed = any(value != old for value, old in zip(sections.values(), before, strict=True)) or (
        out_timeout is not None and out_timeout != out_before)
    shown = ", ".join(f"{name} {value:.1f} s" for name, value in sections.items())
    log.log(logging.INFO if rank == 0 and changed else logging.DEBUG,
            "calculated section timeouts: %s%s (longest seen x %g, floor %g s)", shown or "none",
            f"; out-of-section {out_timeout:.1f} s" if out_timeout is not None else "", safety_factor, floor)
    return sections, out_timeout
