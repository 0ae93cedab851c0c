"""A rank's link to its monitor: control socket, heartbeat slot and stack-dump registration.

Opening the link is the ``init`` handshake; closing it releases everything, optionally telling
the monitor first (``shutdown``) so that no timeout fires for the rank afterwards.
"""

from __future__ import annotations

import faulthandler
import logging
import socket
from typing import IO, Any

from ft.shared.config import FaultToleranceConfig
from ft.shared.contracts import ENDPOINT_ENV, STACK_SIGNAL
from ft.shared.errors import RankMonitorClientError
from ft.shared.heartbeat_slots import HeartbeatWriter
from ft.shared.wire import ProtocolError, request

log = logging.getLogger("ft.client")
_CONNECT_TIMEOUT = 10.0
_REQUEST_TIMEOUT = 30.0


class MonitorLink:
    """Connects and initializes at construction; raises RankMonitorClientError when it cannot."""

    def __init__(self, endpoint: str, init_message: dict[str, Any]) -> None:
        self._stack_file: IO[str] | None = None
        self.writer: HeartbeatWriter | None = None
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(_CONNECT_TIMEOUT)
            self._sock.connect(endpoint)
            self._sock.settimeout(None)  # blocking: requests bound their own waits, the peek uses MSG_DONTWAIT
        except OSError as exc:
            self._sock.close()
            raise RankMonitorClientError(
                f"cannot reach the rank monitor at {endpoint} ({ENDPOINT_ENV}): {exc.strerror or exc}. "
                f"The ft_launcher that set it is gone, or the variable was copied from another job; "
                f"unset {ENDPOINT_ENV} to run without hang detection"
            ) from None
        try:
            self.reply = self.request(init_message)
            self.config = FaultToleranceConfig.from_mapping(self.reply["config"])
            self.writer = HeartbeatWriter(self.reply["heartbeat_file"], int(self.reply["slot"]))
            self._stack_file = open(self.reply["stack_file"], "w")  # noqa: SIM115 (open for faulthandler)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            self.close(notify=False)
            raise RankMonitorClientError(f"the rank monitor's init reply is unusable: {exc!r}") from None
        except RankMonitorClientError:
            self.close(notify=False)
            raise
        # SIGUSR2 is reserved: the monitor sends it to a hung rank to get its Python stacks.
        faulthandler.register(STACK_SIGNAL, file=self._stack_file, all_threads=True, chain=False)

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = request(self._sock, message, _REQUEST_TIMEOUT)
        except (OSError, TimeoutError, ProtocolError) as exc:
            raise RankMonitorClientError(f"rank monitor request {message['type']!r} failed: {exc}") from None
        if not reply.get("ok"):
            raise RankMonitorClientError(f"the rank monitor refused {message['type']!r}: {reply.get('error')}")
        return reply

    def monitor_gone(self) -> bool:
        """Non-blocking: True when the monitor closed the connection."""
        try:
            # Data waiting would mean the peer is there (the monitor never sends unasked).
            return not self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True

    def close(self, notify: bool) -> None:
        if notify:
            try:
                self.request({"type": "shutdown"})
            except RankMonitorClientError as exc:
                log.warning("could not tell the monitor about the shutdown: %s", exc)
        if self._stack_file is not None and not notify:
            faulthandler.unregister(STACK_SIGNAL)
            self._stack_file.close()
        # After a shutdown the dump stays registered (faulthandler holds the file): a rank that then
        # fails to exit is reported with its stacks (rank_exit_timeout). A new init replaces it.
        self._stack_file = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self._sock.close()
