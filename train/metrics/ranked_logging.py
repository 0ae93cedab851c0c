"""``RankedLogger``: one place that decides which rank says what, instead of a rank check at each call site."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from ft import rank_from_env


class RankedLogger(logging.LoggerAdapter):
    """A logger that speaks on rank 0 only (``rank_zero_only=True``) or on one chosen rank (``rank=N``).

    Messages every rank should write (into its own log file) go through a plain ``logging.Logger``;
    what is the same on every rank (progress, checkpoints saved by rank 0, validation losses) goes
    through ``RankedLogger(name, rank_zero_only=True)`` so it is said once.
    """

    def __init__(self, name: str = __name__, rank_zero_only: bool = False) -> None:
        super().__init__(logging.getLogger(name), {})
        self.rank_zero_only = rank_zero_only

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, rank: int | None = None, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        here = rank_from_env()
        if (self.rank_zero_only and here != 0) or (rank is not None and here != rank):
            return
        msg, kwargs = self.process(msg, kwargs)
        self.logger.log(level, msg, *args, **kwargs)
