"""Ask hung ranks for their Python stacks and wait, briefly, until the dumps are written.

Each rank registers ``faulthandler`` on SIGUSR2 at init (SIGUSR2 is reserved for this), writing
to its own file. The dump runs in a C-level handler, so it works even when the rank's Python code
is stuck; the wait below is bounded so a rank that never writes cannot stall the monitor.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from ft.shared.contracts import STACK_SIGNAL

log = logging.getLogger("ft.monitor")
_POLL = 0.01


def stack_file_path(stack_dir: Path, rank: int, attempt: int) -> Path:
    """Where rank ``rank`` of attempt ``attempt`` writes its stacks (before and after it connects)."""
    return stack_dir / f"stacks-rank{rank}-attempt{attempt}.txt"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def capture_stacks(targets: list[tuple[int, Path]], limit: float = 0.5) -> set[Path]:
    """Signal every ``(pid, stack_file)`` and return the files that received a dump within ``limit``."""
    before: dict[Path, int] = {}
    for pid, path in targets:
        size = _size(path)  # before the signal: a fast dump may be complete by the time kill() returns
        try:
            os.kill(pid, STACK_SIGNAL)
            before[path] = size
        except (ProcessLookupError, PermissionError) as exc:
            log.warning("could not ask pid %d for its stacks: %s", pid, exc)
    done: set[Path] = set()
    last = dict(before)
    deadline = time.monotonic() + limit
    while len(done) < len(before) and time.monotonic() < deadline:
        time.sleep(_POLL)
        for path, start in before.items():
            size = _size(path)
            # Finished once it has grown and then stopped growing for one poll.
            if path not in done and size > start and size == last[path]:
                done.add(path)
            last[path] = size
    return done | {path for path, start in before.items() if last[path] > start}
