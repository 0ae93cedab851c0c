"""The story of one job for its summary: its attempts, how each ended and why, the job's exit code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    # From the rank monitor (monotonic s, None when unknown): when every local rank had sent a heartbeat, and
    # when a `checkpoint` section had last closed on every local rank.
    first_heartbeat: float | None = None
    checkpointed: float | None = None
    # A failed attempt, as the restart verdicts compare it: the rank that failed first, the heartbeats it had
    # sent in the attempt, and its error (``failure_signature.FailureSignature``; None: a kill, hang or exit code).
    failed_rank: int | None = None
    heartbeats: int | None = None
    error: str | None = None
    signature: Any = None

    def kept_until(self) -> float:
        """Until when its work survives it: its end if it saved as it was ended, else its last checkpoint."""
        if self.saved and self.ended is not None:
            return self.ended
        return max(self.started, self.checkpointed) if self.checkpointed is not None else self.started

    def productive_from(self) -> float:
        """When it was training again: its first heartbeat, else its start."""
        return self.first_heartbeat if self.first_heartbeat is not None else self.started


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
    verdict: str | None = None  # why restarting stopped early (``restart_verdicts``), None otherwise

    def end(self, outcome: Outcome) -> None:
        """The job is over: its outcome, and the exit code that outcome means."""
        self.outcome, self.exit_code, self.ended = outcome, int(outcome.exit_code), time.monotonic()

    def note_detection(self, event) -> None:
        """Keep what the monitor found (an ``ft.RankEvent``) with the attempt it ended."""
        if self.current is not None:
            self.current.detection = {"kind": event.kind, "rank": event.rank, "gap": round(event.gap, 3),
                                      "timeout": event.timeout, "timeout_source": event.timeout_source}

    def note_progress(self, progress) -> None:
        """Keep the monitor's view of the current attempt (an ``ft.monitor.progress.AttemptProgress``)."""
        if self.current is not None:
            self.current.first_heartbeat, self.current.checkpointed = progress.first_heartbeat, progress.last_checkpoint

    def begin(self, number: int, world_size: int) -> Attempt:
        attempt = Attempt(number, world_size, time.monotonic())
        self.attempts.append(attempt)
        return attempt

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def time_lost(self) -> float:
        """Work thrown away and the wait for the next attempt: for each attempt followed by another, from
        where its work was kept until (its last checkpoint, its end when it saved as it was ended, else its
        start) to the next attempt's first heartbeat (else its start); overlaps counted once."""
        lost, covered = 0.0, float("-inf")
        for this, following in zip(self.attempts, self.attempts[1:], strict=False):
            begin, end = max(this.kept_until(), covered), following.productive_from()
            if end > begin:
                lost += end - begin
            covered = max(covered, end)
        return lost
