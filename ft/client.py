"""RankMonitorClient: the rank side of the heartbeats API (init, heartbeat, calibrate, persist, shut down).

Names and meanings follow NVIDIA's nvidia-resiliency-ext heartbeats API, so code written for it
runs here with only the import changed. See docs/heartbeats.md.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import socket
import time
import weakref
from typing import IO, Any

from ft.config import FaultToleranceConfig
from ft.distributed import all_reduce_max, rank_and_world
from ft.errors import RankMonitorClientError
from ft.heartbeat_slots import HeartbeatWriter
from ft.monitor import ENDPOINT_ENV
from ft.stacks import STACK_SIGNAL
from ft.timeouts import HeartbeatTimeouts, from_state_dict, merge_calculated, to_state_dict
from ft.wire import PROTOCOL_VERSION, ProtocolError, request

log = logging.getLogger("ft.client")
_monotonic_ns = time.monotonic_ns
_CONNECT_TIMEOUT = 10.0
_REQUEST_TIMEOUT = 30.0
# How often send_heartbeat() looks for a closed monitor connection (a non-blocking peek).
_LIVENESS_PERIOD_NS = 1_000_000_000
_warned_unmonitored = False
_clients: weakref.WeakSet[RankMonitorClient] = weakref.WeakSet()


def _forget_in_forked_child() -> None:
    # A forked child (e.g. a DataLoader worker) is not the rank: drop its copies of the
    # connection and mapping so it can neither heartbeat for the rank nor keep its socket open.
    for client in list(_clients):
        client._close(reason="this process is a fork of the rank that initialized monitoring", notify=False)


os.register_at_fork(after_in_child=_forget_in_forked_child)


class RankMonitorClient:
    """One per rank: heartbeats to the node's monitor, timeout calibration, their state dict."""

    def __init__(self) -> None:
        self.rank: int | None = None
        self.local_rank: int | None = None
        self.is_monitored = False
        # Effective settings received from the monitor; None when running without one.
        self.config: FaultToleranceConfig | None = None
        self._active = False
        self._inactive_reason = "before init_workload_monitoring()"
        self._sock: socket.socket | None = None
        self._writer: HeartbeatWriter | None = None
        self._stack_file: IO[str] | None = None
        self._configured = HeartbeatTimeouts()
        self._calculated: HeartbeatTimeouts | None = None
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
            self._connect(endpoint, world_size)
        else:
            _warn_unmonitored()
        self.is_monitored = bool(endpoint)
        self._reset_timing()
        self._active = True

    def _connect(self, endpoint: str, world_size: int) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(_CONNECT_TIMEOUT)
            sock.connect(endpoint)
            sock.settimeout(None)  # blocking: requests bound their own waits, the peek uses MSG_DONTWAIT
        except OSError as exc:
            sock.close()
            raise RankMonitorClientError(
                f"cannot reach the rank monitor at {endpoint} ({ENDPOINT_ENV}): {exc.strerror or exc}. "
                f"The ft_launcher that set it is gone, or the variable was copied from another job; "
                f"unset {ENDPOINT_ENV} to run without hang detection"
            ) from None
        self._sock = sock
        message: dict[str, Any] = {
            "type": "init",
            "protocol": PROTOCOL_VERSION,
            "rank": self.rank,
            "local_rank": self.local_rank,
            "world_size": world_size,
            "pid": os.getpid(),
            "timeouts": None if self._calculated is None else self._calculated.to_message(),
        }
        try:
            reply = self._request(message)
            self.config = FaultToleranceConfig.from_mapping(reply["config"])
            self._writer = HeartbeatWriter(reply["heartbeat_file"], int(reply["slot"]))
            self._stack_file = open(reply["stack_file"], "w")  # noqa: SIM115 (kept open for faulthandler)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            self._close(reason="init failed", notify=False)
            raise RankMonitorClientError(f"the rank monitor's init reply is unusable: {exc!r}") from None
        except RankMonitorClientError:
            self._close(reason="init failed", notify=False)
            raise
        faulthandler.register(STACK_SIGNAL, file=self._stack_file, all_threads=True, chain=False)
        self._configured = HeartbeatTimeouts(
            self.config.initial_rank_heartbeat_timeout, self.config.rank_heartbeat_timeout
        )
        log.debug("rank %d connected to the monitor at %s (slot %s)", self.rank, endpoint, reply["slot"])

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
        try:
            if self._sock is not None and self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                return  # data waiting means the peer is there; the monitor never sends unasked
        except BlockingIOError:
            return
        except OSError:
            pass
        self._close(reason="after the rank monitor closed the connection", notify=False)
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
        ready = self._count >= 2
        first = (self._first_ns - self._init_ns) / 1e9 if self._count else 0.0
        previous = self._calculated or HeartbeatTimeouts()
        # One all-reduce carries readiness too, so every rank takes the same branch below.
        not_ready, first, gap, prev_initial, prev_subsequent = all_reduce_max(
            [0.0 if ready else 1.0, first, self._max_gap_ns / 1e9, previous.initial or 0.0, previous.subsequent or 0.0]
        )
        if not_ready:
            if skip_if_not_ready:
                log.debug("calibration skipped: some rank has seen fewer than two heartbeats")
                return False
            raise RankMonitorClientError(
                f"calculate_and_set_hb_timeouts() needs at least two heartbeats on every rank since "
                f"init_workload_monitoring(); this rank has {self._count}. Call it later in training, "
                f"or pass skip_if_not_ready=True"
            )
        merged_previous = HeartbeatTimeouts(prev_initial or None, prev_subsequent or None, prev_subsequent > 0)
        factor = (self.config or FaultToleranceConfig()).safety_factor
        self._calculated = merge_calculated(merged_previous, first, gap, factor)
        self._send_timeouts()
        log.log(
            logging.INFO if self.rank == 0 else logging.DEBUG,
            "calculated heartbeat timeouts: initial %.1f s (longest wait for a first heartbeat %.3f s x %g), "
            "per-step %.1f s (longest gap %.3f s x %g)",
            self._calculated.initial, first, factor, self._calculated.subsequent, gap, factor,
        )  # fmt: skip
        return True

    # ------------------------------------------------------------------ 2./5. persistence
    def state_dict(self) -> dict[str, Any]:
        """Versioned, JSON-serialisable; holds the calculated timeouts (identical on every rank)."""
        return to_state_dict(self._calculated)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore calculated timeouts; before init they are sent with init, after it at once."""
        loaded = from_state_dict(state)
        if loaded is None:
            return  # nothing was calculated in that run: keep the timeouts in force
        self._calculated = loaded
        if self._active:
            self._send_timeouts()

    # ------------------------------------------------------------------ 6. shutdown
    def shutdown_workload_monitoring(self) -> None:
        """Tell the monitor this rank is done (no timeout fires for it afterwards); release resources."""
        if not self._active:
            return
        self._close(reason="after shutdown_workload_monitoring()", notify=True)

    # ------------------------------------------------------------------ internals
    def _reset_timing(self) -> None:
        self._init_ns = _monotonic_ns()
        self._first_ns = self._last_ns = self._max_gap_ns = self._count = 0
        self._next_liveness_ns = self._init_ns + _LIVENESS_PERIOD_NS

    def _send_timeouts(self) -> None:
        if self._sock is not None and self._calculated is not None:
            self._request({"type": "set_timeouts", "timeouts": self._calculated.to_message()})

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._sock is not None
        try:
            reply = request(self._sock, message, _REQUEST_TIMEOUT)
        except (OSError, TimeoutError, ProtocolError) as exc:
            raise RankMonitorClientError(f"rank monitor request {message['type']!r} failed: {exc}") from None
        if not reply.get("ok"):
            raise RankMonitorClientError(f"the rank monitor refused {message['type']!r}: {reply.get('error')}")
        return reply

    def _close(self, reason: str, notify: bool) -> None:
        if notify and self._sock is not None:
            try:
                self._request({"type": "shutdown"})
            except RankMonitorClientError as exc:
                log.warning("could not tell the monitor about the shutdown: %s", exc)
        if self._stack_file is not None:
            faulthandler.unregister(STACK_SIGNAL)
            self._stack_file.close()
        for resource in (self._writer, self._sock):
            if resource is not None:
                resource.close()
        self._stack_file = self._writer = self._sock = None
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
