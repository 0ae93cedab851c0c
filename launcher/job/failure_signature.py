"""What a failed rank's failure looks like, so that two attempts' failures can be compared.

From what the launcher sees of a failed worker: the exception (type and message, from elastic's error
file, written by the forked worker for an uncaught exception or by a script's own ``@record``) and its
innermost frame (from the traceback in that file); or a signal the process raised on itself (SIGSEGV,
SIGBUS, SIGFPE, SIGILL, SIGABRT). Kills from outside (SIGKILL, SIGTERM: a user, a scheduler, the OOM
killer, a chaos test), hangs and bare exit codes have no signature: they may be transient, so they
never count as "the same failure twice" (the no-progress rule still sees them).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Any

SELF_RAISED = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT})
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)', re.MULTILINE)
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class FailureSignature:
    """The error of one failed rank: ``error`` (``ValueError: bad sample``, ``signal SIGSEGV``), ``where``."""

    rank: int
    error: str
    where: str = ""  # the innermost frame: ``data.py:31 in __getitem__``

    def describe(self) -> str:
        return f"{self.error} ({self.where})" if self.where else self.error


def of_failure(rank: int, exitcode: int, error_file_data: Any) -> FailureSignature | None:
    """The signature of a worker that exited ``exitcode``, or None when it has none (see the module)."""
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return None
        return FailureSignature(rank, f"signal {sig.name}") if sig in SELF_RAISED else None
    message = error_file_data.get("message") if isinstance(error_file_data, dict) else None
    if isinstance(message, dict):
        text, stack = message.get("message"), (message.get("extraInfo") or {}).get("py_callstack", "")
    else:
        text, stack = message, ""
    if not isinstance(text, str) or not text.strip():
        return None
    frames = _FRAME.findall(stack if isinstance(stack, str) else "")
    where = ""
    if frames:
        path, line, function = frames[-1]
        where = f"{path.rsplit('/', 1)[-1]}:{line} in {function}"
    return FailureSignature(rank, " ".join(text.split())[:_MAX_MESSAGE], where)
