"""The section half of RankMonitorClient (NVIDIA's section API): start/end sections, calibrate their timeouts."""

from __future__ import annotations

import time
from collections.abc import Collection

from ft.client.calibration import calibrate_sections
from ft.client.section_clock import SectionClock
from ft.shared.config import FaultToleranceConfig
from ft.shared.errors import RankMonitorClientError
from ft.shared.timeouts import SavedTimeouts, SectionTimeouts


class SectionsAPI:
    """Mixed into RankMonitorClient, which provides ``_active``, ``_link``, ``config`` and the rest."""

    _clock: SectionClock | None
    _calc_sections: dict[str, float]
    _calc_out_of_section: float | None

    @property
    def section_timeouts(self) -> SectionTimeouts:
        """Section timeouts in force: calculated ones where there are any, else the monitor's config."""
        config = self.config or FaultToleranceConfig()
        return SectionTimeouts(
            section={**config.rank_section_timeouts, **self._calc_sections},
            out_of_section=self._calc_out_of_section if self._calc_out_of_section is not None
            else config.rank_out_of_section_timeout,
            calculated_sections=dict(self._calc_sections),
            is_out_of_section_calculated=self._calc_out_of_section is not None,
        )

    def start_section(self, section: str) -> None:
        """Open ``section``; it may stay open for its timeout (``rank_section_timeouts``). A few stores, no message."""
        self._section_clock("start_section").start(section, time.monotonic_ns())

    def end_section(self, section: str) -> None:
        """Close ``section`` (it must be open)."""
        self._section_clock("end_section").end(section, time.monotonic_ns())

    def end_all_sections(self) -> None:
        """Close every open section; nothing happens if none is open."""
        self._section_clock("end_all_sections").end_all(time.monotonic_ns())

    def calculate_and_set_section_timeouts(
        self,
        selected_sections: Collection[str] | None = None,
        calc_out_of_section: bool = True,
        skip_if_not_ready: bool = False,
    ) -> bool:
        """Collective: set the selected sections' timeouts (None: those in ``rank_section_timeouts``) and,
        with ``calc_out_of_section``, the out-of-section one, from the longest durations seen on any rank
        x safety_factor. Returns False (on every rank) when not ready and ``skip_if_not_ready`` is set."""
        clock = self._section_clock("calculate_and_set_section_timeouts()")
        config = self.config or FaultToleranceConfig()
        selected = list(config.rank_section_timeouts) if selected_sections is None else list(selected_sections)
        result = calibrate_sections(
            selected, clock.longest, clock.longest_out_now(time.monotonic_ns()), calc_out_of_section,
            SavedTimeouts(sections=self._calc_sections, out_of_section=self._calc_out_of_section),
            config.safety_factor, config.calculated_timeout_floor, skip_if_not_ready, self.rank or 0,
        )  # fmt: skip
        if result is None:
            return False
        sections, out = result
        self._calc_sections = {**self._calc_sections, **sections}
        if out is not None:
            self._calc_out_of_section = out
        self._send_section_timeouts()
        return True

    def _section_clock(self, call: str) -> SectionClock:
        if not self._active or self._clock is None:
            raise RankMonitorClientError(f"{call} called {self._inactive_reason}")
        return self._clock

    def _announce_section(self, section: int, name: str) -> None:
        if self._link is not None:
            self._link.request({"type": "section", "id": section, "name": name})

    def _section_message(self) -> dict:
        return {"sections": dict(self._calc_sections), "out_of_section": self._calc_out_of_section}

    def _send_section_timeouts(self) -> None:
        if self._link is not None and (self._calc_sections or self._calc_out_of_section is not None):
            self._link.request({"type": "set_timeouts", **self._section_message()})
