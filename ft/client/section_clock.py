"""A rank's sections (NVIDIA's section API): which are open since when, and the longest time seen in each.

The rank publishes every change to its shared-memory slot (a few stores, no message), so the
monitor can time each open section and the stretches with none open. The longest durations seen
here are what ``calculate_and_set_section_timeouts()`` measures.
"""

from __future__ import annotations

from collections.abc import Callable

from ft.shared.errors import RankMonitorClientError
from ft.shared.heartbeat_slots import MAX_SECTIONS, HeartbeatWriter

_NS = 1e9


class SectionClock:
    """Open sections of one rank and the longest durations seen since init."""

    def __init__(self, init_ns: int, writer: HeartbeatWriter | None, announce: Callable[[int, str], None]) -> None:
        self._writer, self._announce = writer, announce
        self.ids: dict[str, int] = {}
        self.open: dict[str, int] = {}  # name -> start ns
        self.mask = 0
        self.out_since_ns = init_ns  # start of the current stretch with no section open
        self.longest: dict[str, float] = {}  # completed sections only
        self.longest_out = 0.0

    def start(self, name: str, now: int) -> None:
        if name in self.open:
            raise RankMonitorClientError(f"start_section({name!r}): the section is already open; end it first")
        section = self._id(name)
        if not self.open:
            self.longest_out = max(self.longest_out, (now - self.out_since_ns) / _NS)
        self.open[name] = now
        self.mask |= 1 << section
        self._publish(section, now)

    def end(self, name: str, now: int) -> None:
        if name not in self.open:
            raise RankMonitorClientError(f"end_section({name!r}): the section is not open")
        self._close(name, now)
        self._publish(-1, 0)

    def end_all(self, now: int) -> None:
        for name in list(self.open):
            self._close(name, now)
        self._publish(-1, 0)

    def longest_out_now(self, now: int) -> float:
        """Longest out-of-section stretch, counting the current one if no section is open."""
        return self.longest_out if self.open else max(self.longest_out, (now - self.out_since_ns) / _NS)

    def _close(self, name: str, now: int) -> None:
        started = self.open.pop(name)
        self.longest[name] = max(self.longest.get(name, 0.0), (now - started) / _NS)
        self.mask &= ~(1 << self.ids[name])
        if not self.open:
            self.out_since_ns = now

    def _id(self, name: str) -> int:
        if name not in self.ids:
            if len(self.ids) >= MAX_SECTIONS:
                raise RankMonitorClientError(
                    f"start_section({name!r}): at most {MAX_SECTIONS} distinct section names per rank"
                )
            self.ids[name] = len(self.ids)
            self._announce(self.ids[name], name)  # the monitor learns the name behind the id once
        return self.ids[name]

    def _publish(self, section: int, start_ns: int) -> None:
        if self._writer is not None:
            self._writer.write_sections(self.mask, self.out_since_ns, section, start_ns)
