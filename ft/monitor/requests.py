"""How the monitor answers one rank's requests (init, set_timeouts, shutdown) on its connection."""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ft.monitor.rank_watch import WatchedRank
from ft.monitor.stacks import stack_file_path
from ft.shared.config import FaultToleranceConfig
from ft.shared.errors import RankMonitorStateError
from ft.shared.heartbeat_slots import MAX_SECTIONS, HeartbeatFile
from ft.shared.timeouts import check_seconds
from ft.shared.wire import PROTOCOL_VERSION, LineBuffer

log = logging.getLogger("ft.monitor")


class RequestRefused(ValueError):
    """The request is invalid; the message is sent back to the rank, and the connection is closed."""


@dataclass
class Connection:
    sock: socket.socket
    peer_pid: int | None
    buffer: LineBuffer = field(default_factory=LineBuffer)
    rank: WatchedRank | None = None


def peer_credentials(sock: socket.socket) -> tuple[int, int] | None:
    """(pid, uid) of the connecting process, where the platform tells (Linux SO_PEERCRED)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    return pid, uid


def accept_connections(server: socket.socket) -> list[Connection]:
    """Accept every pending connection from this user (others cannot reach the 0700 directory anyway)."""
    accepted = []
    while True:
        try:
            sock, _ = server.accept()
        except BlockingIOError:
            return accepted
        credentials = peer_credentials(sock)
        if credentials is not None and credentials[1] != os.getuid():
            log.warning("refused a connection from uid %d (pid %d)", credentials[1], credentials[0])
            sock.close()
            continue
        sock.setblocking(False)
        accepted.append(Connection(sock, credentials[0] if credentials else None))


def _int(message: dict[str, Any], key: str, minimum: int = 0) -> int:
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RequestRefused(f"'{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def _timeouts(message: dict[str, Any]) -> tuple[float, float] | None:
    values = message.get("timeouts")
    if values is None:
        return None
    if not isinstance(values, dict):
        raise RequestRefused(f"'timeouts' must be an object, got {values!r}")
    try:
        return check_seconds(values.get("initial"), "initial"), check_seconds(values.get("subsequent"), "subsequent")
    except RankMonitorStateError as exc:
        raise RequestRefused(str(exc)) from None


def _section_timeouts(message: dict[str, Any]) -> tuple[dict[str, float], float | None] | None:
    """Calculated section timeouts in a request (``sections``, ``out_of_section``), or None when absent."""
    sections, out = message.get("sections"), message.get("out_of_section")
    if sections is None and out is None:
        return None
    if not isinstance(sections or {}, dict):
        raise RequestRefused(f"'sections' must be an object, got {sections!r}")
    try:
        return ({str(name): check_seconds(v, f"sections.{name}") for name, v in (sections or {}).items()},
                None if out is None else check_seconds(out, "out_of_section"))
    except RankMonitorStateError as exc:
        raise RequestRefused(str(exc)) from None


@dataclass
class RequestHandler:
    """Turns requests into replies and rank registrations; owned by the monitor's loop thread."""

    config: FaultToleranceConfig
    sources: dict[str, str]
    stack_dir: Path
    heartbeats: Callable[[], HeartbeatFile]
    attempt: Callable[[], int]

    def handle(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("type")
        if kind == "init":
            return self._init(conn, message)
        if conn.rank is None:
            raise RequestRefused(f"'{kind}' before 'init'")
        if kind == "set_timeouts":
            timeouts, sections = _timeouts(message), _section_timeouts(message)
            if timeouts is None and sections is None:
                raise RequestRefused("'set_timeouts' needs 'timeouts' or 'sections'")
            if timeouts is not None:
                changed = (conn.rank.initial, conn.rank.subsequent) != timeouts
                conn.rank.set_calculated(*timeouts)
                # Every rank sends the same values: one line per node, and only when they changed.
                log.log(logging.INFO if conn.rank.local_rank == 0 and changed else logging.DEBUG,
                        "calculated timeouts applied: initial %.1f s, per-step %.1f s", *timeouts)
            if sections is not None:
                conn.rank.set_calculated_sections(*sections)
            return {"ok": True}
        if kind == "section":
            section, name = _int(message, "id"), message.get("name")
            if section >= MAX_SECTIONS or not isinstance(name, str) or not name:
                raise RequestRefused(f"'section' needs an id below {MAX_SECTIONS} and a name, got {message!r}")
            conn.rank.section_names[section] = name
            return {"ok": True}
        if kind == "shutdown":
            conn.rank.done = True
            conn.rank.shutdown_ns = time.monotonic_ns()
            log.debug("rank %d shut monitoring down", conn.rank.rank)
            return {"ok": True}
        raise RequestRefused(f"unknown request type {kind!r}")

    def _init(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        if conn.rank is not None:
            raise RequestRefused(f"rank {conn.rank.rank} is already initialized on this connection")
        if message.get("protocol") != PROTOCOL_VERSION:
            raise RequestRefused(
                f"protocol version {message.get('protocol')!r} is not supported by this monitor "
                f"(it speaks {PROTOCOL_VERSION}); use the same pulsetrain version for launcher and workers"
            )
        rank, local_rank = _int(message, "rank"), _int(message, "local_rank")
        pid = conn.peer_pid if conn.peer_pid else _int(message, "pid", 1)
        calculated = _timeouts(message)
        heartbeats = self.heartbeats()
        try:
            slot = heartbeats.allocate()
        except RuntimeError as exc:
            raise RequestRefused(str(exc)) from None
        stack_file = stack_file_path(self.stack_dir, rank, self.attempt())
        watched = WatchedRank(
            rank=rank,
            local_rank=local_rank,
            pid=pid,
            slot=slot,
            stack_file=stack_file,
            init_ns=time.monotonic_ns(),
            initial=self.config.initial_rank_heartbeat_timeout,
            subsequent=self.config.rank_heartbeat_timeout,
            initial_source=self.sources.get("initial_rank_heartbeat_timeout", "config"),
            subsequent_source=self.sources.get("rank_heartbeat_timeout", "config"),
        )
        if calculated is not None:
            watched.set_calculated(*calculated)
        section_source = self.sources.get("rank_section_timeouts", "config")
        watched.section_timeouts = {
            name: (seconds, self.sources.get(f"rank_section_timeouts.{name}", section_source))
            for name, seconds in self.config.rank_section_timeouts.items()
        }
        watched.out_of_section = (self.config.rank_out_of_section_timeout,
                                  self.sources.get("rank_out_of_section_timeout", "config"))
        sections = _section_timeouts(message)
        if sections is not None:
            watched.set_calculated_sections(*sections)
        conn.rank = watched
        log.debug("rank %d (local %d, pid %d) connected, slot %d", rank, local_rank, pid, slot)
        return {
            "ok": True,
            "config": self.config.to_dict(),
            "heartbeat_file": os.fspath(heartbeats.path),
            "slot": slot,
            "stack_file": os.fspath(stack_file),
            "timeouts": {
                "initial": watched.initial,
                "subsequent": watched.subsequent,
                "calculated": calculated is not None,
            },
        }
