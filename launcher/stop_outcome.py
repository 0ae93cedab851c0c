"""How a stop request ended: the job's exit code from the exit codes of the workers it stopped."""

from __future__ import annotations

from ft import ExitCode
from launcher.pcontext import DONE_CODES


def stop_exit_code(codes: dict[int, int | None]) -> int:
    """A stop request ends resumable (75), however the workers ended, unless training had finished.

    Every worker exiting 0 means it had finished (0); a worker exiting 2 found bad input (2).
    A rank killed because it hung or because a second signal asked for it loses only the steps
    since the last checkpoint, which a relaunch redoes.
    """
    if codes and all(code == ExitCode.FINISHED for code in codes.values()):
        return ExitCode.FINISHED
    if any(code == ExitCode.USAGE_ERROR for code in codes.values()):
        return ExitCode.USAGE_ERROR
    return ExitCode.STOPPED_ON_REQUEST


def stopped_exit_codes_ok(codes: dict[int, int | None]) -> bool:
    """Every stopped worker exited cleanly (0 or 75): none was killed or crashed on the way."""
    return all(code in DONE_CODES for code in codes.values())

