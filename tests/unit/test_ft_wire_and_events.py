"""The JSON-lines wire format and the one-line event descriptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from ft import RankEvent
from ft.shared.wire import MAX_MESSAGE_BYTES, LineBuffer, ProtocolError, decode, encode


def test_line_buffer_splits_messages_across_chunks():
    buffer = LineBuffer()
    data = encode({"type": "init", "rank": 1}) + encode({"type": "shutdown"})
    assert buffer.feed(data[:5]) == []
    assert buffer.feed(data[5:]) == [{"type": "init", "rank": 1}, {"type": "shutdown"}]


@pytest.mark.parametrize("line", [b"[1, 2]", b"not json", b"\xff\xfe", b'"text"'])
def test_non_objects_are_refused(line):
    with pytest.raises(ProtocolError):
        decode(line)


def test_oversized_messages_are_refused_without_waiting_for_a_newline():
    buffer = LineBuffer()
    with pytest.raises(ProtocolError, match="longer than"):
        buffer.feed(b"x" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(ProtocolError, match="exceeds"):
        encode({"blob": "x" * MAX_MESSAGE_BYTES})


def test_nan_is_not_sent():
    with pytest.raises(ValueError):
        encode({"timeouts": {"initial": float("nan")}})


def test_event_descriptions_name_rank_pid_gap_timeout_and_source():
    hang = RankEvent("heartbeat_timeout", 3, 1, 4242, 31.26, 30.0, "--ft-rank-heartbeat-timeout", Path("/s.txt"))
    text = hang.describe()
    for words in ("rank 3", "local rank 1", "pid 4242", "31.3 s", "30 s", "--ft-rank-heartbeat-timeout", "/s.txt"):
        assert words in text
    assert "\n" not in text
    first = RankEvent("initial_timeout", 0, 0, 7, 12.0, 10.0, "calculated").describe()
    assert "first heartbeat" in first and "calculated" in first
    dropped = RankEvent("disconnected", 2, 0, 9, 0.4, None, None).describe()
    assert "without shutdown" in dropped and "pid 9" in dropped
