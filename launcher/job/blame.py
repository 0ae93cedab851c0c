"""Who ended an attempt: the first rank that failed or left, and what the others were doing meanwhile.

A rank that hangs or leaves takes its peers with it: they block in the next collective (and are
reported silent too), or fail in it once the peer's connection is gone. The log and the summary
name the first party; the others get one line each saying what they were (waiting in a collective,
failed after the peer had left, ended by the restart), never an ERROR and a stack of their own.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from typing import Any

from launcher.records.stacks import top_frames, waits_on_peers

log = logging.getLogger("launcher")


def only_waiting(events: Sequence[Any]) -> bool:
    """Every reported rank is blocked in a collective: the rank it waits for has not been found yet."""
    return bool(events) and all(waits_on_peers(e.stack_file) for e in events)


def report_hangs(events: list[Any]) -> Any:
    """Log the events of one check (``ft.RankEvent``); returns the likely culprit.

    The culprit (a rank not waiting on its peers, with the longest silence) and any other rank not
    in a collective get an ERROR line and the top of their stack; ranks waiting in a collective get
    one line each.
    """
    events.sort(key=lambda e: (waits_on_peers(e.stack_file), -e.gap))
    culprit = events[0]
    for event in events:
        if event is not culprit and waits_on_peers(event.stack_file):
            log.warning("rank %d (local rank %d, pid %d) was waiting in a collective (silent for %.1f s): "
                        "waiting for rank %d, not the cause; ended by the restart",
                        event.rank, event.local_rank, event.pid, event.gap, culprit.rank)
            continue
        log.error("%s", event.describe())
        for line in top_frames(event.stack_file):
            log.error("    %s", line)
    return culprit


def how_it_ended(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"


def short(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit {code}"


def left_early(order: list[int], codes: dict[int, int | None], failed: int) -> list[int]:
    """Local ranks that exited 0 before local rank ``failed`` failed: they left while their peers still ran.

    ``order`` is the order the ranks exited in, when the process context knows it; without it, every
    rank that exited 0 counts (a rank that finished cannot make a peer fail, one that left early can).
    """
    if not order:
        return [local for local, code in codes.items() if code == 0 and local != failed]
    early = []
    for local in order:
        if local == failed:
            break
        if codes.get(local) == 0:
            early.append(local)
    return early


def crash_cause(ranks: dict[int, tuple[int, int]], failed: int, code: int, order: list[int],
                codes: dict[int, int | None]) -> str:
    """Log the first rank that failed or left, and the others; returns the attempt's cause for the summary.

    ``ranks``: local rank -> (global rank, pid); ``failed``: the local rank whose failure elastic
    reported first; ``codes``: every local rank's exit code (None: still running).
    """
    rank, pid = ranks[failed]
    early = left_early(order, codes, failed)[:1]
    if early:
        gone, gone_pid = ranks[early[0]]
        log.error("rank %d (local rank %d, pid %d) exited 0 while its peers were still running: it left the job "
                  "early", gone, early[0], gone_pid)
        log.warning("rank %d (local rank %d, pid %d) then %s: its collectives fail without rank %d",
                    rank, failed, pid, how_it_ended(code), gone)
        cause = f"rank {gone} exited early (exit 0), then rank {rank} failed ({short(code)})"
    else:
        log.error("rank %d (local rank %d, pid %d) %s", rank, failed, pid, how_it_ended(code))
        cause = f"rank {rank} crashed ({short(code)})"
    for local, (other, _) in sorted(ranks.items()):
        other_code = codes.get(local)
        if local == failed or local in early:
            continue
        if other_code is None:
            log.info("rank %d (local rank %d): still running, ended by the restart", other, local)
        elif other_code != 0:
            log.warning("rank %d (local rank %d) also %s after rank %d: ended with it",
                        other, local, how_it_ended(other_code), rank)
    return cause
