"""How a run ended: the launcher's one outcome vocabulary, for attempts, jobs and sweep points, and its exit codes.

Attempts, jobs (one ``ft_launcher`` launch) and sweep points all end in an ``Outcome``; the job's and
the sweep's exit codes are derived from it here, and only here.
"""

from __future__ import annotations

import enum

from ft import ExitCode


class Outcome(str, enum.Enum):
    """The state of an attempt, a job or a sweep point (a str, so records and JSON read as plain words).

    ::

        NOT_STARTED ──> RUNNING ──┬──> FINISHED   every rank exited 0
              │                   ├──> STOPPED    stopped on request, checkpoints saved: a relaunch resumes
              │                   ├──> FAILED     a crash or a reported hang (an attempt: the group restarts
              │                   │               while restarts remain; a job: the restart budget is spent)
              │                   ├──> BAD_INPUT  exit 2, or a point's directory holds another point's run
              │                   ├──> CANNOT_HELP  a worker exited 93 (e.g. a non-finite loss): not restarted
              │                   └──> UNHEALTHY  a health check failed on this node before an attempt (exit 69)
              └──> ALREADY_FINISHED  a sweep point an earlier run of the same sweep finished: skipped

    ``NOT_STARTED`` stays the end state of a sweep point when the sweep was stopped before it began.
    """

    NOT_STARTED = "not started"
    RUNNING = "running"
    FINISHED = "finished"
    ALREADY_FINISHED = "already finished"
    STOPPED = "stopped"
    FAILED = "failed"
    BAD_INPUT = "bad input"
    CANNOT_HELP = "restarting cannot help"
    UNHEALTHY = "node unhealthy"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__

    @property
    def exit_code(self) -> ExitCode:
        """The exit code a job (or sweep) ending in this state returns; RUNNING has none."""
        return _EXIT_CODES[self]

    @property
    def finished(self) -> bool:
        return self in (Outcome.FINISHED, Outcome.ALREADY_FINISHED)

    @property
    def resumable(self) -> bool:
        """Work remains that a relaunch with the same run directory (or sweep dir) continues."""
        return self in (Outcome.STOPPED, Outcome.NOT_STARTED)

    @property
    def failed(self) -> bool:
        return self in (Outcome.FAILED, Outcome.BAD_INPUT, Outcome.CANNOT_HELP, Outcome.UNHEALTHY)

    @property
    def not_retried(self) -> bool:
        """A worker's exit code said a restart would only repeat the failure (2 or 93)."""
        return self in (Outcome.BAD_INPUT, Outcome.CANNOT_HELP)

    @classmethod
    def of_worker_exit(cls, code: int | None) -> Outcome | None:
        """The job's outcome when a worker exits ``code`` and restarting cannot change it; None otherwise."""
        return _NOT_RETRIED.get(code)

    @classmethod
    def of_exit_code(cls, code: int | None) -> Outcome:
        """What a process's exit code says about how it ended (a code of no known meaning is a failure)."""
        return _OUTCOMES.get(code, cls.FAILED)


_EXIT_CODES = {
    Outcome.FINISHED: ExitCode.FINISHED, Outcome.ALREADY_FINISHED: ExitCode.FINISHED,
    Outcome.STOPPED: ExitCode.STOPPED_ON_REQUEST, Outcome.NOT_STARTED: ExitCode.STOPPED_ON_REQUEST,
    Outcome.FAILED: ExitCode.FAILED, Outcome.BAD_INPUT: ExitCode.USAGE_ERROR,
    Outcome.CANNOT_HELP: ExitCode.RESTART_CANNOT_HELP, Outcome.UNHEALTHY: ExitCode.NODE_UNHEALTHY,
}
# A sweep point that ended 93 (it diverged) is a failed point: the sweep goes on, and ends 1.
_OUTCOMES = {ExitCode.FINISHED: Outcome.FINISHED, ExitCode.STOPPED_ON_REQUEST: Outcome.STOPPED,
             ExitCode.USAGE_ERROR: Outcome.BAD_INPUT, ExitCode.RESTART_CANNOT_HELP: Outcome.FAILED}
_NOT_RETRIED = {ExitCode.USAGE_ERROR: Outcome.BAD_INPUT, ExitCode.RESTART_CANNOT_HELP: Outcome.CANNOT_HELP}


def worst(outcomes: list[Outcome]) -> Outcome:
    """The outcome of a sweep from its points': work left first (relaunch), then a failure, else finished."""
    if any(o.resumable for o in outcomes):
        return Outcome.STOPPED
    if any(o.failed for o in outcomes):
        return Outcome.FAILED
    return Outcome.FINISHED
