"""What the monitor reports to its owner: one RankEvent per hung or dropped rank."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

EventKind = Literal[
    "initial_timeout", "heartbeat_timeout", "section_timeout", "out_of_section_timeout", "disconnected",
    "not_connected", "exit_timeout",
]


@dataclass(frozen=True)
class RankEvent:
    """A rank missed its deadline or dropped its connection; the owner decides what to end."""

    kind: EventKind
    rank: int
    local_rank: int
    pid: int
    # Seconds since init (no heartbeat yet) or since the latest heartbeat, at detection.
    gap: float
    # Timeout in force, seconds; None for disconnects.
    timeout: float | None
    # "calculated", or where the launcher said the configured value came from; None for disconnects.
    timeout_source: str | None
    # File holding the rank's Python stacks at detection, if they could be captured.
    stack_file: Path | None = None
    # Why no stacks could be asked for, when that is known in advance (said in the report).
    no_stacks_reason: str | None = None
    # The open section that timed out (section_timeout only).
    section: str | None = None

    def describe(self) -> str:
        """One line for people: which rank, what happened, the numbers and where the timeout came from."""
        who = f"rank {self.rank} (local rank {self.local_rank}, pid {self.pid})"
        source = f" from {self.timeout_source}" if self.timeout_source else ""
        if self.kind == "initial_timeout":
            text = (
                f"{who} sent no first heartbeat {self.gap:.1f} s after init; "
                f"initial_rank_heartbeat_timeout is {self.timeout:g} s{source}"
            )
        elif self.kind == "not_connected":
            text = (
                f"{who} did not connect to the rank monitor {self.gap:.1f} s after it started (stuck before "
                f"init_workload_monitoring()?); initial_rank_heartbeat_timeout is {self.timeout:g} s{source}"
            )
        elif self.kind == "section_timeout":
            text = (
                f"{who} has been in section '{self.section}' for {self.gap:.1f} s; "
                f"rank_section_timeouts.{self.section} is {self.timeout:g} s{source}"
            )
        elif self.kind == "out_of_section_timeout":
            text = (
                f"{who} has been outside any section for {self.gap:.1f} s; "
                f"rank_out_of_section_timeout is {self.timeout:g} s{source}"
            )
        elif self.kind == "exit_timeout":
            text = (
                f"{who} ended monitoring but had not exited {self.gap:.1f} s after every local rank was done "
                f"(stuck in teardown?); rank_exit_timeout is {self.timeout:g} s{source}"
            )
        elif self.kind == "heartbeat_timeout":
            text = (
                f"{who} sent no heartbeat for {self.gap:.1f} s; "
                f"rank_heartbeat_timeout is {self.timeout:g} s{source}"
            )
        else:
            text = (
                f"{who} closed its monitor connection without shutdown (crashed or was killed) "
                f"{self.gap:.1f} s after its last sign of life"
            )
        if self.stack_file is not None:
            text += f"; stacks in {self.stack_file}"
        elif self.no_stacks_reason:
            text += f"; no stacks: {self.no_stacks_reason}"
        return text
