"""Hands RankEvents to the monitor's owner, with stacks attached, and never from a finished attempt.

Hang reports wait (bounded) for the hung ranks' stack dumps, so they are published from a short
thread: the monitor thread keeps checking other ranks' deadlines on time meanwhile. The attempt
number, changed under the same lock that guards publishing, keeps a late report from an attempt
the owner already reset from reaching ``events``.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from pathlib import Path

from ft.monitor.events import RankEvent
from ft.monitor.stacks import capture_stacks

log = logging.getLogger("ft.monitor")
# One line per published event, on its own logger: an owner that reports events itself (ft_launcher)
# silences this logger by name.
event_log = logging.getLogger("ft.monitor.events")


class EventPublisher:
    """Owns ``events`` (the queue the owner reads) and the attempt counter."""

    def __init__(self) -> None:
        self.events: queue.Queue[RankEvent] = queue.Queue()
        self.attempt = 0
        self._lock = threading.Lock()

    def publish(self, event: RankEvent, attempt: int) -> None:
        with self._lock:
            if attempt != self.attempt:
                return  # reset() happened meanwhile: this rank belongs to a finished attempt
            event_log.warning("%s", event.describe())
            self.events.put(event)

    def report_hangs(self, found: list[tuple[RankEvent, Path | None]]) -> None:
        """Ask the hung ranks for their stacks, then publish; returns at once."""
        args = (found, self.attempt)
        threading.Thread(target=self._capture_then_publish, args=args, name="ft-stack-capture", daemon=True).start()

    def _capture_then_publish(self, found: list[tuple[RankEvent, Path | None]], attempt: int) -> None:
        try:
            captured = capture_stacks([(event.pid, path) for event, path in found if path is not None])
        except Exception:
            log.exception("rank monitor: stack capture failed; reporting without stacks")
            captured = set()
        for event, path in found:
            self.publish(dataclasses.replace(event, stack_file=path if path in captured else None), attempt)

    def next_attempt(self) -> None:
        with self._lock:
            self.attempt += 1

    def discard_pending(self) -> None:
        with self._lock:
            while not self.events.empty():
                self.events.get_nowait()
