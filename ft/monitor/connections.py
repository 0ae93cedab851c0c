"""The rank monitor's connections: accepted, answered, checked, dropped, all on the monitor thread.

Each connection is one rank's (once it said hello): its requests are answered by the
``RequestHandler``, a refused or broken one is closed, a connected rank past its heartbeat deadline
is found by ``expired()``, and a rank whose connection drops before it ended monitoring is reported
as ``disconnected``.
"""

from __future__ import annotations

import logging
import selectors
import socket
import time
from collections.abc import Callable
from pathlib import Path

from ft.monitor.event_publisher import EventPublisher
from ft.monitor.events import RankEvent
from ft.monitor.progress import ProgressWatch
from ft.monitor.requests import Connection, RequestHandler, RequestRefused, accept_connections
from ft.monitor.roster import AttemptRoster
from ft.shared.heartbeat_slots import HeartbeatFile
from ft.shared.wire import MAX_MESSAGE_BYTES, ProtocolError, encode

log = logging.getLogger("ft.monitor")


class Connections:
    """Every open rank connection of the monitor, registered with its selector."""

    def __init__(self, selector: selectors.BaseSelector, handler: RequestHandler, roster: AttemptRoster,
                 progress: ProgressWatch, publisher: EventPublisher, heartbeats: Callable[[], HeartbeatFile]) -> None:
        self._selector, self._handler, self._roster = selector, handler, roster
        self._progress, self._publisher, self._heartbeats = progress, publisher, heartbeats
        self._conns: dict[socket.socket, Connection] = {}

    def connected(self) -> set[int]:
        """Local ranks connected now."""
        return {conn.rank.local_rank for conn in self._conns.values() if conn.rank is not None}

    def expired(self) -> list[tuple[RankEvent, Path | None]]:
        """Connected ranks past a deadline, each with its stack file (at most one event per rank and attempt)."""
        found = []
        for conn in list(self._conns.values()):
            self.see_progress(conn)
            event = conn.rank.expired(self._heartbeats()) if conn.rank is not None else None
            if event is not None:
                conn.rank.done = True
                found.append((event, conn.rank.stack_file))
        return found

    def accept(self, server: socket.socket) -> None:
        for conn in accept_connections(server):
            self._conns[conn.sock] = conn
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)

    def receive(self, conn: Connection) -> None:
        try:
            chunk = conn.sock.recv(MAX_MESSAGE_BYTES)
        except OSError:
            chunk = b""
        if not chunk:
            self.drop(conn)
            return
        try:
            for message in conn.buffer.feed(chunk):
                conn.sock.sendall(encode(self._handler.handle(conn, message)))
                if conn.rank is not None:
                    self._roster.saw(conn.rank)
        except (ProtocolError, RequestRefused) as exc:
            who = f"rank {conn.rank.rank}" if conn.rank else f"pid {conn.peer_pid}"
            log.warning("closing the connection of %s: %s", who, exc)
            self._refuse(conn, str(exc))
        except OSError:
            self.drop(conn)
        except Exception as exc:
            # A bug answering one request: that rank gets an error, every other rank stays watched.
            log.exception("rank monitor: error answering a request")
            self._refuse(conn, f"internal error in the rank monitor: {exc!r}")

    def _refuse(self, conn: Connection, error: str) -> None:
        try:
            conn.sock.sendall(encode({"ok": False, "error": error}))
        except OSError:
            pass
        self.drop(conn)

    def drop(self, conn: Connection) -> None:
        self.see_progress(conn)  # a checkpoint completed since the last check still counts
        self._forget(conn)
        if conn.rank is not None and not conn.rank.done:
            conn.rank.done = True
            self._publisher.publish(conn.rank.disconnected(self._heartbeats()), self._publisher.attempt)

    def _forget(self, conn: Connection) -> None:
        self._conns.pop(conn.sock, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def see_progress(self, conn: Connection) -> None:
        if conn.rank is not None:
            self._progress.see(conn.rank.local_rank, conn.rank.section_names,
                               self._heartbeats().read_slot(conn.rank.slot), time.monotonic_ns())

    def see_all(self) -> None:
        """Read every connected rank's slot now (the launcher asks for a fresh view after a failure)."""
        for conn in list(self._conns.values()):
            self.see_progress(conn)

    def close_all(self) -> None:
        for conn in list(self._conns.values()):
            self._forget(conn)
