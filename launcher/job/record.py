"""The story of one job for its summary: its attempts, how each ended and why, the job's exit code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from launcher.job.outcome import Outcome


@dataclass
class Attempt:
    """One attempt of a job: when it ran, how it ended (``outcome``) and why, in words (``cause``)."""

    number: int
    world_size: int
    started: float
    ended: float | None = None
    cause: str = "running"
    outcome: Outcome = Outcome.RUNNING
    # The monitor's finding that ended it: kind, rank, gap (the detection delay), timeout and its source.
    detection: dict | None = None
    # Its workers were ended for a restart and all saved a stop checkpoint first (exit 75): its work is kept.
    saved: bool = False


@dataclass
class JobRecord:
    """The story of one fault-tolerant job, for the summary table."""

    name: str
    run_dir: Path | None = None
    started: float = field(default_factory=time.monotonic)
    attempts: list[Attempt] = field(default_factory=list)
    outcome: Outcome = Outcome.RUNNING
    exit_code: int | None = None
    ended: float | None = None

    def end(self, outcome: Outcome) -> None:
        """The job is over: its outcome, and the exit code that outcome means."""
        self.outcome, self.exit_code, self.ended = outcome, int(outcome.exit_code), time.monotonic()

    def note_detection(self, event) -> None:
        """Keep what the monitor found (an ``ft.RankEvent``) with the attempt it ended."""
        if self.current is not None:
            self.current.detection = {"kind": event.kind, "rank": event.rank, "gap": round(event.gap, 3),
                                      "timeout": event.timeout, "timeout_source": event.timeout_source}

    def begin(self, number: int, world_size: int) -> Attempt:
        attempt = Attempt(number, world_size, time.monotonic())
        self.attempts.append(attempt)
        return attempt

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def time_lost(self) -> float:
        """Work thrown away: each attempt followed by another, from its start (its steps are recomputed, its
        detection and the restart waited out), or from its end when its workers saved before they were
        ended (only the restart is lost)."""
        lost = 0.0
        for this, following in zip(self.attempts, self.attempts[1:], strict=False):
            kept_until = this.ended if this.saved and this.ended is not None else this.started
            lost += following.started - kept_until
        return lost
