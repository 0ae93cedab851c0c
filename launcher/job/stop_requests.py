"""Stop requests to the launcher: the first stop signal, its repeats, "kill now", and the graceful stop itself.

The first stop signal asks the workers to stop cleanly (SIGTERM, a stop checkpoint, exit 75). The
same signal again within ``SAME_REQUEST_WINDOW`` is the same request: GNU ``timeout`` and some
schedulers signal the launcher and then its whole process group, so one Ctrl-C arrives twice within
milliseconds. After that window a second SIGINT, SIGTERM, SIGHUP or SIGQUIT, or another of them at
any time, means "kill now"; other stop signals repeated (a scheduler's SIGUSR1 sent twice) are logged.
"""

from __future__ import annotations

import abc
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from launcher.cli.stop_signals import handled as handled_stop_signals
from launcher.compat import CompatibleAgent, terminate_process_handler
from launcher.job.stop_outcome import StopResult
from launcher.workers.pcontext import EndPolicy, WorkerGroupContext

log = logging.getLogger("launcher")
SAME_REQUEST_WINDOW = 1.0  # seconds: the same signal again within it is the same request
_KILL_NOW = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_FORWARDED = signal.SIGTERM  # every stop signal to the launcher reaches the workers as SIGTERM


class StopRequests:
    """The process's stop signals: which came first and when, and what a later one means."""

    def __init__(self) -> None:
        self.first: signal.Signals | None = None
        self.first_at = 0.0
        self.kill_now: Callable[[signal.Signals], None] | None = None  # set by the agent while it stops
        self.pending_kill: signal.Signals | None = None

    def arm(self) -> None:
        """Catch the stop signals (again: elastic installs its own handler whenever workers start)."""
        if threading.current_thread() is not threading.main_thread():
            return
        handler = self._first if self.first is None else self.again
        for sig in handled_stop_signals():
            signal.signal(sig, handler)

    def _first(self, signum: int, frame: Any) -> None:
        if self.first is not None:
            return self.again(signum, frame)
        self.first, self.first_at = signal.Signals(signum), time.monotonic()
        # Before elastic unwinds to its teardown: a repeat arriving meanwhile is already understood.
        for sig in {*_KILL_NOW, *handled_stop_signals()}:
            signal.signal(sig, self.again)
        terminate_process_handler(signum, frame)  # raises elastic's SignalException: the agent stops the workers

    def again(self, signum: int, frame: Any) -> None:
        """A signal while the workers stop (or after the first stop signal)."""
        sig = signal.Signals(signum)
        since = time.monotonic() - self.first_at
        if sig not in _KILL_NOW:
            log.warning("%s again: already stopping", sig.name)
        elif sig == self.first and since < SAME_REQUEST_WINDOW:
            log.info("%s again %.0f ms after the first: the same stop request (a wrapper may signal the launcher "
                     "and its process group both); still stopping cleanly", sig.name, since * 1000)
        elif self.kill_now is not None:
            self.kill_now(sig)
        else:
            self.pending_kill = sig  # before the agent began its stop: it kills as soon as it does

    def watch_stop(self, kill_now: Callable[[signal.Signals], None] | None) -> None:
        """Route "kill now" to ``kill_now`` while the workers stop (None: the stop is over)."""
        self.kill_now = kill_now
        if kill_now is not None and self.pending_kill is not None:
            kill_now(self.pending_kill)


REQUESTS = StopRequests()


class StoppingAgent(CompatibleAgent):
    """The agent's side of stopping: group teardown before a restart, and the graceful stop on request."""

    _launch: Any  # WorkerLaunch (launcher/job/agent.py)
    _term_timeout: float
    stop: StopResult

    @property
    @abc.abstractmethod
    def group(self) -> WorkerGroupContext | None:
        """The running worker group's process context, if ours."""

    @abc.abstractmethod
    def hung_ranks_now(self) -> list[int]:
        """Local ranks the monitor found silent since the last check, reported already."""

    def stop_workers(self, worker_group: Any) -> None:
        group = self.group
        if group is None:
            return super().stop_workers(worker_group)
        began = time.monotonic()
        running = group.running()
        ft = self._launch.ft
        group.end(signal.SIGTERM, ft.rank_termination_grace, EndPolicy(kill_signal=ft.termination_signal))
        if running:
            log.info("worker group ended in %.2f s (%d still running got SIGTERM, then %s after %g s)",
                     time.monotonic() - began, len(running), ft.rank_termination_signal, ft.rank_termination_grace)
        self.on_group_ended(group, running)

    def on_group_ended(self, group: WorkerGroupContext, running: list[int]) -> None:
        """Hook: the group was ended before a restart; ``running`` were still running when it was."""

    def _kill_now(self, sig: signal.Signals) -> None:
        if self.stop.killed_by is None:
            log.warning("%s during the graceful stop: killing the workers now (the checkpoints already "
                        "saved stand; relaunch to resume)", sig.name)
        self.stop.killed_by = sig.name
        if self.group is not None:
            self.group.signal_workers(signal.SIGKILL, whole_group=True)

    def _hung_during_stop(self) -> list[int]:
        hung = self.hung_ranks_now()
        if hung:
            log.error("a rank hung during the graceful stop cannot stop: killing it now; the others get %g s",
                      self._launch.ft.rank_termination_grace)
        return hung

    def shutdown_workers(self, death_sig: signal.Signals, timeout: float | None) -> None:
        context = self.group
        if context is None:
            return self.elastic_shutdown(death_sig, timeout)
        # Without a stop request (the job's own end), any signal now means "kill now"; after one, the
        # handlers it installed stay. Installed before anything else, so even a quick double press is caught.
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, REQUESTS.again) for sig in {*_KILL_NOW, *handled_stop_signals()}}
        try:
            REQUESTS.watch_stop(self._kill_now)
            running = context.running()
            if running:
                log.warning("forwarding SIGTERM to %d worker(s); waiting up to %g s for them to stop "
                            "(press Ctrl-C again to kill them now)", len(running), self._term_timeout)
            # The monitor keeps watching: a rank that hangs now (or already had) is found within its
            # timeout and killed, instead of holding the stop for the whole --term-timeout.
            policy = EndPolicy(watch=self._hung_during_stop, hang_grace=self._launch.ft.rank_termination_grace)
            context.end(_FORWARDED, self._term_timeout, policy)  # our grace, whatever elastic's default
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            REQUESTS.watch_stop(None)
        self.elastic_shutdown(_FORWARDED, self._term_timeout)  # the rest of elastic's teardown
        # Only the workers that were running when asked to stop tell how the stop went; an
        # attempt that had already failed (a signal between attempts) is not their doing.
        codes = context.exit_codes()
        self.stop.codes = {rank: codes[rank] for rank in running}
