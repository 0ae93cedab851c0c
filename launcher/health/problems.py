"""What a failed health check says: the check, what it found, what to do; one exception type for all of them."""

from __future__ import annotations


class CheckFailed(Exception):
    """One health check found this node unfit to run the job."""

    def __init__(self, check: str, found: str, todo: str) -> None:
        super().__init__(f"health check '{check}' failed: {found}; {todo}")
        self.check, self.found, self.todo = check, found, todo
