"""RankMonitorClient: the rank side of the heartbeats API (init, heartbeat, calibrate, persist, shut down).

Names and meanings follow NVIDIA's nvidia-resiliency-ext heartbeats API, so code written for it
runs here with only the import changed. See docs/heartbeats.md.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from typing import Any

from ft.client.calibration import calibrate
from ft.client.collectives import rank_and_world
from ft.client.monitor_link import MonitorLink
from ft.client.section_clock import SectionClock
from ft.client.sections_api import SectionsAPI
from ft.shared.config import FaultToleranceConfig
from ft.shared.contracts import ENDPOINT_ENV
from ft.shared.errors import RankMonitorClientError
from ft.shared.heartbeat_slots import HeartbeatWriter
from ft.shared.timeouts import HeartbeatTimeouts, SavedTimeouts, parse_state, to_state_dict
from ft.shared.wire import PROTOCOL_VERSION

log = logging.getLogger("ft.client")
_monotonic_ns = time.monotonic_ns
# How often send_heartbeat() looks for a closed monitor connection (a non-blocking peek).
_LIVENESS_PERIOD_NS = 1_000_000_000
_warned_unmonitored = False
_clients: weakref.WeakSet[RankMonitorClient] = weakref.WeakSet()


def _forget_in_forked_child() -> None:
    # A forked child (e.g. a DataLoader worker) is not the rank: drop its copies of the
    # connection and mapping so it can neither heartbeat for the rank nor keep its socket open.
    for client in list(_clients):
        client._close("in a process forked from the rank that initialized monitoring", notify=False)


os.register_at_fork(after_in_child=_forget_in_forked_child)


class RankMonitorClient(SectionsAPI):
    """One per rank: heartbeats and sections to the node's monitor, timeout calibration, their state dict."""

    def __init__(self) -> None:
        self.rank: int | None = None
        self.local_rank: int | None = None
        self.is_monitored = False
        # Effective settings received from the monitor; None when running without one.
        self.config: FaultToleranceConfig | None = None
        self._active = False
        self._inactive_reason = "before init_workload_monitoring()"
        self._link: MonitorLink | None = None
        self._writer: HeartbeatWriter | None = None
        self._configured = HeartbeatTimeouts()
        self._calculated: HeartbeatTimeouts | None = None
        self._calc_sections: dict[str, float] = {}
        self._calc_out_of_section: float | None = None
        self._clock = None
        # What the calculated timeouts were measured on (e.g. world size, a config digest); saved by
        # state_dict() for the caller to compare on load. The client itself does not interpret it.
        self.measured_on: dict[str, Any] | None = None
        self._reset_timing()
        _clients.add(self)

    @property
    def hb_timeouts(self) -> HeartbeatTimeouts:
        """Timeouts in force: calculated (or loaded) ones once there are any, else the monitor's config."""
        return self._calculated or self._configured

    # ------------------------------------------------------------------ 1. init
    def init_workload_monitoring(self) -> None:
        """Connect this rank to its monitor (``$PULSETRAIN_FT_ENDPOINT``), or run unmonitored if unset."""
        if self._active:
            raise RankMonitorClientError(
                "init_workload_monitoring() was already called on this client; call "
                "shutdown_workload_monitoring() before initializing again"
            )
        rank, world_size = rank_and_world()
        self.rank, self.local_rank = rank, int(os.environ.get("LOCAL_RANK", rank))
        endpoint = os.environ.get(ENDPOINT_ENV)
        if endpoint:
            link = MonitorLink(endpoint, self._init_message(world_size))
            self._link, self._writer, self.config = link, link.writer, link.config
            self._configured = HeartbeatTimeouts(
                link.config.initial_rank_heartbeat_timeout, link.config.rank_heartbeat_timeout
            )
            log.debug("rank %d connected to the monitor at %s", rank, endpoint)
        else:
            _warn_unmonitored()
        self.is_monitored = bool(endpoint)
        self._reset_timing()
        self._clock = SectionClock(self._init_ns, self._writer, self._announce_section)
        self._active = True

    def _init_message(self, world_size: int) -> dict[str, Any]:
        return {
            "type": "init",
            "protocol": PROTOCOL_VERSION,
            "rank": self.rank,
            "local_rank": self.local_rank,
            "world_size": world_size,
            "pid": os.getpid(),
            "timeouts": None if self._calculated is None else self._calculated.to_message(),
            **self._section_message(),
        }

    # ------------------------------------------------------------------ 3. heartbeats
    def send_heartbeat(self) -> None:
        """Record a sign of life: a clock read and a store to shared memory; never blocks."""
        now = _monotonic_ns()
        if not self._active:
            raise RankMonitorClientError(f"send_heartbeat() called {self._inactive_reason}")
        last = self._last_ns
        if last:
            if now - last > self._max_gap_ns:
                self._max_gap_ns = now - last
        else:
            self._first_ns = now
        self._last_ns = now
        self._count += 1
        if self._writer is not None:
            self._writer.write(self._count, now)
            if now >= self._next_liveness_ns:
                self._check_monitor_alive(now)

    def _check_monitor_alive(self, now: int) -> None:
        self._next_liveness_ns = now + _LIVENESS_PERIOD_NS
        if self._link is not None and self._link.monitor_gone():
            self._close("after the rank monitor closed the connection", notify=False)
            raise RankMonitorClientError(
                "the rank monitor closed this rank's connection (the launcher stopped, restarted the "
                "workers or exited); this rank is no longer watched"
            )

    # ------------------------------------------------------------------ 4. calibration
    def calculate_and_set_hb_timeouts(self, skip_if_not_ready: bool = False) -> bool:
        """Collective: set timeouts from the max intervals seen on any rank x safety_factor.

        Every rank must call it at the same point. Returns False (on every rank) when some rank has
        seen fewer than two heartbeats and ``skip_if_not_ready`` is set.
        """
        if not self._active:
            raise RankMonitorClientError(f"calculate_and_set_hb_timeouts() called {self._inactive_reason}")
        calculated = calibrate(
            heartbeats=self._count,
            first_wait=(self._first_ns - self._init_ns) / 1e9 if self._count else 0.0,
            max_gap=self._max_gap_ns / 1e9,
            previous=self._calculated,
            safety_factor=(self.config or FaultToleranceConfig()).safety_factor,
            floor=(self.config or FaultToleranceConfig()).calculated_timeout_floor,
            skip_if_not_ready=skip_if_not_ready,
            rank=self.rank or 0,
        )
        if calculated is None:
            return False
        self._calculated = calculated
        self._send_timeouts()
        return True

    # ------------------------------------------------------------------ 2./5. persistence
    def state_dict(self) -> dict[str, Any]:
        """Versioned, JSON-serialisable; holds the calculated timeouts (identical on every rank)."""
        saved = SavedTimeouts(sections=self._calc_sections, out_of_section=self._calc_out_of_section,
                              measured_on=self.measured_on)
        return to_state_dict(self._calculated, saved)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore calculated timeouts; before init they are sent with init, after it at once."""
        loaded = parse_state(state)
        if loaded.heartbeat is not None:
            self._calculated = loaded.heartbeat
            if self._active:
                self._send_timeouts()
        if loaded.sections or loaded.out_of_section is not None:
            self._calc_sections = {**self._calc_sections, **loaded.sections}
            if loaded.out_of_section is not None:
                self._calc_out_of_section = loaded.out_of_section
            if self._active:
                self._send_section_timeouts()

    # ------------------------------------------------------------------ 6. shutdown
    def shutdown_workload_monitoring(self) -> None:
        """Tell the monitor this rank is done (no timeout fires for it afterwards); release resources."""
        if self._active:
            self._close("after shutdown_workload_monitoring()", notify=True)

    # ------------------------------------------------------------------ internals
    def _reset_timing(self) -> None:
        self._init_ns = _monotonic_ns()
        self._first_ns = self._last_ns = self._max_gap_ns = self._count = 0
        self._next_liveness_ns = self._init_ns + _LIVENESS_PERIOD_NS

    def _send_timeouts(self) -> None:
        if self._link is not None and self._calculated is not None:
            self._link.request({"type": "set_timeouts", "timeouts": self._calculated.to_message()})

    def _close(self, reason: str, notify: bool) -> None:
        if self._link is not None:
            self._link.close(notify)
        self._link = self._writer = None
        self._active = False
        self._inactive_reason = reason


def _warn_unmonitored() -> None:
    global _warned_unmonitored
    if not _warned_unmonitored:
        _warned_unmonitored = True
        log.warning(
            "%s is not set (not started by ft_launcher): hang detection is off for this process; "
            "heartbeats are still timed, so calculated timeouts can be saved for monitored runs",
            ENDPOINT_ENV,
        )
