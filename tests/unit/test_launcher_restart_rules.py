"""launcher.job.restart_verdicts and failure_signature: which failed attempts stop the job with 93, and which never do."""

from __future__ import annotations

import json
import signal

from ft import FaultToleranceConfig
from launcher.job.failure_signature import of_failure
from launcher.job.outcome import Outcome
from launcher.job.record import JobRecord
from launcher.job.restart_verdicts import RestartVerdicts

STACK = 'Traceback (most recent call last):\n  File "/a/loop.py", line 9, in step\n  File "/a/data.py", line 31, in get\n'
ERROR = {"message": {"message": "ValueError: corrupt sample 3", "extraInfo": {"py_callstack": STACK}}}


def test_an_exception_is_its_type_message_and_innermost_frame():
    sig = of_failure(1, 1, ERROR)
    assert sig.describe() == "ValueError: corrupt sample 3 (data.py:31 in get)" and sig.rank == 1


def test_kills_and_bare_exit_codes_have_no_signature_but_a_segfault_has():
    assert of_failure(0, -signal.SIGKILL, {}) is None and of_failure(0, -signal.SIGTERM, {}) is None
    assert of_failure(0, 1, {}) is None
    assert of_failure(0, -signal.SIGSEGV, {}).describe() == "signal SIGSEGV"


def _failed(record: JobRecord, verdicts: RestartVerdicts, checkpointed: bool, beats: int, error=ERROR, rank=0,
            started: float | None = None):
    attempt = record.begin(len(record.attempts), 2)
    if started is not None:
        attempt.started = started
    attempt.outcome, attempt.cause = Outcome.FAILED, f"rank {rank} failed (exit 1)"
    attempt.checkpointed = 1.0 if checkpointed else None
    attempt.heartbeats = beats
    return verdicts.judge(record, None, rank, of_failure(rank, 1, error), None, now=attempt.started)


def test_the_same_failure_from_the_same_checkpoint_stops_at_the_second(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 40, "event": "checkpoint"}) + "\n")
    record, verdicts = JobRecord("job", tmp_path), RestartVerdicts(FaultToleranceConfig())
    assert _failed(record, verdicts, True, 50) is None  # attempt 0 saved: the next one starts elsewhere
    assert _failed(record, verdicts, False, 7) is None
    reason = _failed(record, verdicts, False, 7)
    assert reason.startswith("restarting cannot help: attempts 1 and 2 failed the same way, both from step 40")
    assert "ValueError: corrupt sample 3 (data.py:31 in get)" in reason and record.verdict == reason


def test_another_step_or_rank_or_error_is_not_the_same_failure():
    config = FaultToleranceConfig(max_no_progress_attempts=0)
    record, verdicts = JobRecord("job"), RestartVerdicts(config)
    other = {"message": {"message": "ValueError: corrupt sample 4", "extraInfo": {"py_callstack": STACK}}}
    assert _failed(record, verdicts, False, 7) is None
    assert _failed(record, verdicts, False, 8) is None  # another step
    assert _failed(record, verdicts, False, 8, rank=1) is None  # another rank
    assert _failed(record, verdicts, False, 8, error=other, rank=1) is None  # another message
    assert _failed(record, verdicts, False, 8, error={}, rank=1) is None  # no signature (a kill)
    assert _failed(record, verdicts, False, 8, error={}, rank=1) is None


def test_no_progress_counts_only_once_a_checkpoint_was_seen_and_can_be_off():
    record, verdicts = JobRecord("job"), RestartVerdicts(FaultToleranceConfig(stop_on_repeated_failure=False))
    for beats in (1, 2, 3, 4):
        assert _failed(record, verdicts, False, beats) is None  # no checkpoint ever: progress cannot be seen
    assert _failed(record, verdicts, True, 5) is None
    assert _failed(record, verdicts, False, 6) is None and _failed(record, verdicts, False, 7) is None
    reason = _failed(record, verdicts, False, 8)
    assert "3 attempts in a row (5, 6, 7) completed no checkpoint" in reason
    assert "the same checkpoint (step not known)" in reason
    off = RestartVerdicts(FaultToleranceConfig(stop_on_repeated_failure=False, max_no_progress_attempts=0))
    record = JobRecord("job")
    assert all(_failed(record, off, c, b) is None for c, b in [(True, 1), (False, 2), (False, 3), (False, 4)])


def test_a_storm_is_more_than_n_restarts_within_the_window():
    config = FaultToleranceConfig(max_no_progress_attempts=0, restart_storm_restarts=2, restart_storm_minutes=1)
    record, verdicts = JobRecord("job"), RestartVerdicts(config)
    assert _failed(record, verdicts, True, 1, started=0.0) is None
    assert _failed(record, verdicts, True, 2, started=10.0) is None  # 2 restarts with the next one
    assert _failed(record, verdicts, True, 3, started=100.0) is None  # the restart at 10 s left the window
    reason = _failed(record, verdicts, True, 4, started=130.0)
    assert reason.startswith("restarting cannot help: a restart storm, 3 restarts within 1 min")
