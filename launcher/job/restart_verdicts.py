"""Whether restarting can still help a failed attempt: no progress, the same failure twice, a restart storm.

Decided by the launcher from what it sees, for any script: an attempt made progress when a
``checkpoint`` section closed on every local rank in it (the rank monitor's ``progress()``); where a
rank failed is the checkpoint its attempt started from (the last one completed by an earlier attempt)
and the number of heartbeats it had sent in the attempt; what failed is its ``FailureSignature``. The
step is named from the run's ``metrics.jsonl`` where the template wrote one. Each rule applies only
while restarts remain: a spent budget still ends with exit 1, as before.
"""

from __future__ import annotations

import logging
import time

from ft import FaultToleranceConfig
from launcher.job.failure_signature import FailureSignature
from launcher.job.outcome import Outcome
from launcher.job.record import Attempt, JobRecord
from launcher.records.metrics_rows import last_checkpoint_step

log = logging.getLogger("launcher")


class RestartVerdicts:
    """The three rules over one job's attempts; ``judge`` returns the one line that stops it, or None."""

    def __init__(self, config: FaultToleranceConfig) -> None:
        self._config = config

    def judge(self, record: JobRecord, local_rank: int | None, rank: int | None,
              signature: FailureSignature | None, progress=None, now: float | None = None) -> str | None:
        """Keep what the failed current attempt shows (``progress``: the monitor's fresh view), then decide."""
        attempt = record.current
        if attempt is None:
            return None
        if progress is not None:
            record.note_progress(progress)
            if local_rank is not None:
                attempt.heartbeats = progress.heartbeats.get(local_rank)
        attempt.failed_rank = rank
        attempt.error = signature.describe() if signature is not None else None
        attempt.signature = signature
        reason = (self._same_failure(record) or self._no_progress(record)
                  or self._storm(record, time.monotonic() if now is None else now))
        if reason is not None:
            record.verdict = reason
        return reason

    # ------------------------------------------------------------------ the rules
    def _same_failure(self, record: JobRecord) -> str | None:
        if not self._config.stop_on_repeated_failure or len(record.attempts) < 2:
            return None
        before, this = record.attempts[-2], record.attempts[-1]
        same = (this.signature is not None and before.signature == this.signature
                and before.outcome is Outcome.FAILED and before.checkpointed is None and this.checkpointed is None
                and before.heartbeats is not None and before.heartbeats == this.heartbeats)
        if not same:
            return None
        return (f"restarting cannot help: attempts {before.number} and {this.number} failed the same way, both "
                f"from {_start(record)} and on rank {this.failed_rank} after {this.heartbeats} heartbeat(s): "
                f"{this.error}; not restarting (exit 93; fault_tolerance.stop_on_repeated_failure=false restarts)")

    def _no_progress(self, record: JobRecord) -> str | None:
        limit = self._config.max_no_progress_attempts
        if not limit or not any(a.checkpointed is not None for a in record.attempts):
            return None  # off, or this script's progress cannot be seen yet: never a reason to stop
        stalled: list[Attempt] = []
        for attempt in reversed(record.attempts):
            if attempt.checkpointed is not None or attempt.outcome is not Outcome.FAILED:
                break
            stalled.append(attempt)
        if len(stalled) < limit:
            return None
        numbers = ", ".join(str(a.number) for a in reversed(stalled))
        return (f"restarting cannot help: {len(stalled)} attempts in a row ({numbers}) completed no checkpoint, "
                f"so the job never got past {_start(record)}; last error: {_last_error(record)}; not restarting "
                f"(exit 93; fault_tolerance.max_no_progress_attempts={limit})")

    def _storm(self, record: JobRecord, now: float) -> str | None:
        limit, minutes = self._config.restart_storm_restarts, self._config.restart_storm_minutes
        if not limit:
            return None
        recent = sum(1 for a in record.attempts[1:] if a.started >= now - minutes * 60) + 1  # and the next one
        if recent <= limit:
            return None
        return (f"restarting cannot help: a restart storm, {recent} restarts within {minutes:g} min (more than "
                f"fault_tolerance.restart_storm_restarts={limit}); last error: {_last_error(record)}; not restarting "
                f"(exit 93)")


def _start(record: JobRecord) -> str:
    step = last_checkpoint_step(record.run_dir) if record.run_dir is not None else None
    return f"step {step} (the last checkpoint)" if step is not None else "the same checkpoint (step not known)"


def _last_error(record: JobRecord) -> str:
    attempt = record.current
    if attempt is None:
        return "unknown"
    return f"attempt {attempt.number}: {attempt.error or attempt.cause}"

