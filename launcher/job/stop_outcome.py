"""How a stop request ended: the outcome of the job from the exit codes of the workers it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field

from ft import ExitCode
from launcher.job.outcome import Outcome
from launcher.workers.pcontext import DONE_CODES


@dataclass
class StopResult:
    """The workers that were running when a stop signal came, their exit codes, and a "kill now" signal."""

    codes: dict[int, int | None] = field(default_factory=dict)  # local rank -> exit code
    killed_by: str | None = None  # the second signal that asked to kill at once during the stop

    @property
    def outcome(self) -> Outcome:
        """A stop request ends resumable (STOPPED), however the workers ended, unless training had finished.

        Every worker exiting 0 means it had finished; a worker exiting 2 found bad input. A rank killed
        because it hung or because a second signal asked for it loses only the steps since the last
        checkpoint, which a relaunch redoes.
        """
        if self.codes and all(code == ExitCode.FINISHED for code in self.codes.values()):
            return Outcome.FINISHED
        for code in self.codes.values():
            if Outcome.of_worker_exit(code) is not None:
                return Outcome.of_worker_exit(code)
        return Outcome.STOPPED

    @property
    def clean(self) -> bool:
        """Every stopped worker exited cleanly (0 or 75): none was killed or crashed on the way."""
        return all(code in DONE_CODES for code in self.codes.values())

    def describe(self) -> str:
        """How the workers stopped, in words, for the launcher's log line."""
        if self.killed_by:
            return f"then {self.killed_by}: the workers were killed at once (exit codes {self.codes})"
        if self.clean:
            return "workers stopped cleanly"
        return f"not every worker stopped cleanly (exit codes {self.codes}); the checkpoints already saved stand"
