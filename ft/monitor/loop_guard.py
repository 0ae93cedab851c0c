"""Keep a service loop running through errors: each step is guarded, each distinct error logged once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any


class LoopGuard:
    """``run(doing, step, *args)`` returns False when the step raised; the error is logged once per kind."""

    def __init__(self, log: logging.Logger, owner: str) -> None:
        self._log, self._owner = log, owner
        self._seen: set[tuple[str, type, str]] = set()

    def run(self, doing: str, step: Callable[..., Any], *args: Any) -> bool:
        try:
            step(*args)
            return True
        except Exception as exc:
            seen = (doing, type(exc), str(exc))
            if seen not in self._seen:  # the same error every few ms would drown everything else
                self._seen.add(seen)
                self._log.error("%s: error while %s: %r; it carries on (logged once)", self._owner, doing, exc,
                                exc_info=True)
            return False
