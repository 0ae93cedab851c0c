"""Exception types of the heartbeats API, so callers can catch ours and act on the message."""

from __future__ import annotations


class RankMonitorClientError(RuntimeError):
    """The heartbeats API was misused, or this rank cannot reach its monitor."""


class RankMonitorStateError(RankMonitorClientError, ValueError):
    """A heartbeat-timeouts state dict is malformed or from an unknown version."""


class RankMonitorError(RuntimeError):
    """The node-side rank monitor could not start or was used out of order."""
