"""The statistics that name a straggler: window medians, each rank against the others, streaks of slow windows.

Pure Python, no torch and no collectives: :mod:`train.stragglers` gathers one number per rank per window
(the median of that rank's measured step times) and hands the list here. A rank's ratio is its median over
the median of the other ranks' medians, so one slow rank cannot drag the baseline it is compared with, and
one slow step cannot make a slow window. A rank is named when its ratio exceeds ``factor`` in ``windows``
consecutive windows, once per streak (a rank that recovers and slows down again is named again).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from train.errors import TrainConfigError

ACTIONS = ("log", "stop")


def check_settings(window_steps: int, factor: float, windows: int, action: str) -> None:
    """The ``trainer.straggler_*`` and ``trainer.on_straggler`` values; a bad one raises naming its key."""
    if not isinstance(window_steps, int) or isinstance(window_steps, bool) or window_steps < 0:
        raise TrainConfigError(f"trainer.straggler_window_steps: expected a whole number >= 0 (0: off), "
                               f"got {window_steps!r}")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1 < factor < 1000:
        raise TrainConfigError(f"trainer.straggler_factor: expected a number above 1, got {factor!r}")
    if not isinstance(windows, int) or isinstance(windows, bool) or windows < 1:
        raise TrainConfigError(f"trainer.straggler_windows: expected a whole number >= 1, got {windows!r}")
    if action not in ACTIONS:
        raise TrainConfigError(f"trainer.on_straggler: expected one of {', '.join(ACTIONS)}, got {action!r}")


def window_median(seconds: Sequence[float]) -> float:
    """One rank's summary of a window: the median of its measured step times (robust to a few odd steps)."""
    return statistics.median(seconds) if seconds else 0.0


def ratios(medians: Sequence[float]) -> list[float]:
    """Each rank's median over the median of the other ranks' medians (1.0 where there is nothing to compare)."""
    out = []
    for rank, mine in enumerate(medians):
        others = statistics.median([m for r, m in enumerate(medians) if r != rank]) if len(medians) > 1 else 0.0
        out.append(mine / others if others > 0 else 1.0)
    return out


@dataclass(frozen=True)
class Straggler:
    """A rank just named: its ratio in the last window, its median and the others' (seconds), the streak."""

    rank: int
    ratio: float
    median_s: float
    others_median_s: float
    windows: int


class StragglerJudge:
    """Counts each rank's consecutive slow windows; :meth:`judge` returns the ranks whose streak just reached
    ``windows``. Every rank of the job runs one on the same gathered numbers, so all decide alike."""

    def __init__(self, factor: float, windows: int) -> None:
        self.factor, self.windows = float(factor), windows
        self.streaks: dict[int, int] = {}

    def judge(self, medians: Sequence[float]) -> list[Straggler]:
        named = []
        for rank, ratio in enumerate(ratios(medians)):
            streak = self.streaks.get(rank, 0) + 1 if ratio > self.factor else 0
            self.streaks[rank] = streak
            if streak == self.windows:
                others = statistics.median([m for r, m in enumerate(medians) if r != rank])
                named.append(Straggler(rank, ratio, medians[rank], others, streak))
        return named
