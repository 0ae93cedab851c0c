"""The control protocol between ranks and the monitor: JSON objects, one per line, bounded in size.

Nothing received is ever unpickled or evaluated; a line longer than ``MAX_MESSAGE_BYTES`` or one
that is not a JSON object is a protocol error and ends the connection.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from typing import Any

# Bump when a message changes meaning; the monitor refuses clients speaking another version.
PROTOCOL_VERSION = 2
MAX_MESSAGE_BYTES = 64 * 1024


class ProtocolError(ValueError):
    """A peer sent something that is not a valid message."""


def encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    return data


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"not a JSON line: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"expected a JSON object, got {type(message).__name__}")
    return message


class LineBuffer:
    """Collects bytes from a stream and yields whole messages, refusing oversized lines."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._data += chunk
        messages = []
        while True:
            end = self._data.find(b"\n")
            if end < 0:
                break
            line = bytes(self._data[:end])
            del self._data[: end + 1]
            if len(line) + 1 > MAX_MESSAGE_BYTES:
                raise ProtocolError(f"message longer than {MAX_MESSAGE_BYTES} bytes")
            if line.strip():
                messages.append(decode(line))
        if len(self._data) > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"message longer than {MAX_MESSAGE_BYTES} bytes")
        return messages


def request(sock: socket.socket, message: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send one message on a blocking socket and wait (bounded) for the one-line reply."""
    sock.sendall(encode(message))
    buffer = LineBuffer()
    deadline = time.monotonic() + timeout
    # A selector, not select.select: a training process may hold more than 1024 descriptors.
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {message.get('type')!r} within {timeout:g} s")
            if not selector.select(remaining):
                continue
            chunk = sock.recv(MAX_MESSAGE_BYTES)
            if not chunk:
                raise ConnectionError("the monitor closed the connection")
            replies = buffer.feed(chunk)
            if replies:
                return replies[0]
