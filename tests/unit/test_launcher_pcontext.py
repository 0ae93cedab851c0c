"""Worker-group teardown signals only what the launcher still owns: the worker pid while the worker
is not reaped, its process group after that, and never a pid that now belongs to someone else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from launcher.workers import pcontext
from launcher.workers.pcontext import WorkerGroupContext


def _dead_pid() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return int(out)


class _Group(WorkerGroupContext):
    def __init__(self, pids: dict[int, int], codes: dict[int, int | None]) -> None:  # no PContext setup needed
        self._p, self._c = pids, codes

    def _start(self) -> None:
        raise AssertionError("never started")

    def pids(self) -> dict[int, int]:
        return dict(self._p)

    def exit_codes(self) -> dict[int, int | None]:
        return dict(self._c)


@pytest.fixture
def sent(monkeypatch):
    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(pcontext.os, "kill", lambda pid, sig: calls.append(("kill", pid, sig)))
    monkeypatch.setattr(pcontext.os, "killpg", lambda pid, sig: calls.append(("killpg", pid, sig)))
    return calls


def test_sigterm_goes_to_running_worker_pids_only(sent):
    running, gone = 4242, _dead_pid()
    _Group({0: running, 1: gone}, {0: None, 1: 0}).signal_workers(signal.SIGTERM, whole_group=False)
    assert sent == [("kill", running, signal.SIGTERM)]


def test_the_kill_takes_whole_groups_but_skips_a_reaped_pid_that_exists_again(sent):
    running, gone, reused = 4242, _dead_pid(), os.getpid()  # our own pid stands in for a reused one
    group = _Group({0: running, 1: gone, 2: reused}, {0: None, 1: -9, 2: 0})
    group.signal_workers(signal.SIGKILL, whole_group=True)
    assert sent == [("killpg", running, signal.SIGKILL), ("killpg", gone, signal.SIGKILL)]


def test_only_the_named_ranks_are_signalled(sent):
    _Group({0: 4242, 1: 4343}, {0: None, 1: None}).signal_workers(signal.SIGKILL, whole_group=True, ranks=[1])
    assert sent == [("killpg", 4343, signal.SIGKILL)]
