"""The node-side rank monitor: one thread that serves the ranks' socket, checks their deadlines, reports events.

It runs inside its owner (the launcher); the rank connections are ``connections.py``'s. All sockets
and rank state belong to that thread; ``reset()`` and ``stop()`` are handed to it as commands, so rank state needs no lock
(publishing events does: see ft/event_publisher.py). The monitor only reports (``events``); its
owner decides what to end.
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import shutil
import socket
import threading
import time
from pathlib import Path

from ft.monitor.connections import Connections
from ft.monitor.event_publisher import EventPublisher
from ft.monitor.events import RankEvent
from ft.monitor.loop_guard import LoopGuard
from ft.monitor.private_dir import SOCKET_NAME, make_private_dir
from ft.monitor.progress import AttemptProgress, ProgressWatch
from ft.monitor.rank_watch import ExpectedWorker, WatchedRank
from ft.monitor.requests import RequestHandler
from ft.monitor.roster import AttemptRoster
from ft.monitor.stacks import stack_file_path
from ft.shared.config import FaultToleranceConfig
from ft.shared.contracts import ENDPOINT_ENV
from ft.shared.errors import RankMonitorError
from ft.shared.heartbeat_slots import HeartbeatFile

log = logging.getLogger("ft.monitor")
_COMMAND_WAIT = 10.0


class RankMonitor:
    """Watches every local rank of one node; see docs/architecture.md for the contract."""

    def __init__(
        self,
        config: FaultToleranceConfig,
        stack_dir: Path | None = None,
        sources: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.stack_dir = Path(stack_dir) if stack_dir is not None else None
        self.sources = dict(sources or {})
        self._publisher = EventPublisher()
        self.events: queue.Queue[RankEvent] = self._publisher.events
        self.endpoint: Path | None = None
        self._dir: Path | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._commands: queue.Queue[tuple[str, object, threading.Event]] = queue.Queue()
        self._roster = AttemptRoster()
        self._progress = ProgressWatch()
        self._conns: Connections | None = None  # from start()
        self._generation = 0
        self._guard = LoopGuard(log, "rank monitor")
        # What ended the monitor thread, if anything did while it should have been running.
        self.death: BaseException | None = None
        logging.getLogger("ft.monitor").setLevel(config.log_level)

    # ------------------------------------------------------------------ owner's API
    def start(self) -> None:
        """Create the private directory, socket and heartbeat file; start the monitor thread."""
        if self._thread is not None:
            raise RankMonitorError("RankMonitor.start() was already called")
        self._dir = make_private_dir()
        stacks = self._stacks = self.stack_dir if self.stack_dir is not None else self._dir / "stacks"
        stacks.mkdir(parents=True, exist_ok=True)
        self.endpoint = self._dir / SOCKET_NAME
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(os.fspath(self.endpoint))
        self._server.listen(256)
        self._server.setblocking(False)
        self._heartbeats = HeartbeatFile(self._dir / "heartbeats-0.bin")
        self._handler = RequestHandler(
            self.config, self.sources, stacks, lambda: self._heartbeats, lambda: self._publisher.attempt
        )
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server, selectors.EVENT_READ, "server")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._conns = Connections(self._selector, self._handler, self._roster, self._progress, self._publisher,
                                  lambda: self._heartbeats)
        self._thread = threading.Thread(target=self._run, name="ft-rank-monitor", daemon=True)
        self._thread.start()
        log.debug("rank monitor listening on %s", self.endpoint)

    def worker_env(self) -> dict[str, str]:
        """Environment to merge into every worker so its RankMonitorClient finds this monitor."""
        if self.endpoint is None:
            raise RankMonitorError("call RankMonitor.start() before worker_env()")
        return {ENDPOINT_ENV: os.fspath(self.endpoint)}

    def check_alive(self) -> None:
        """Raise RankMonitorError if the monitor thread has died: the ranks are no longer watched."""
        if self._thread is not None and not self._thread.is_alive() and not self._stopping.is_set():
            raise RankMonitorError(
                f"the rank monitor stopped unexpectedly ({self.death!r}); hang detection is gone, "
                f"so the job is ended rather than left running unwatched"
            )

    def stack_file(self, rank: int) -> Path:
        """Where ``rank`` of the current attempt writes its stacks; a worker may register it before init."""
        if self.endpoint is None:
            raise RankMonitorError("call RankMonitor.start() before stack_file()")
        return stack_file_path(self._stacks, rank, self._publisher.attempt)

    def expect_workers(self, workers: list[ExpectedWorker]) -> None:
        """Watch workers just started: one not connected within initial_rank_heartbeat_timeout is reported."""
        self._command("expect", workers)

    def shut_down_ranks(self) -> dict[int, WatchedRank]:
        """Ranks of this attempt that ended monitoring (by local rank), with when (``shutdown_ns``)."""
        return self._roster.shut_down()

    def progress(self, fresh: bool = False) -> AttemptProgress:
        """The current attempt's first heartbeat, last completed checkpoint and heartbeat counts (any thread);
        ``fresh``: every slot read again first, by the monitor thread."""
        if fresh:
            self._command("see")
        return self._progress.progress()

    def reset(self) -> None:
        """Forget every rank (between attempts) and discard events not yet taken from ``events``."""
        self._command("reset")
        self._publisher.discard_pending()

    def stop(self) -> None:
        """Stop the thread, close every connection and remove the private directory."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake_w.send(b"x")
        self._thread.join(_COMMAND_WAIT)
        self._close_ranks()
        for item in (self._server, self._wake_r, self._wake_w, self._selector, self._heartbeats):
            item.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._thread = None

    def __enter__(self) -> RankMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ monitor thread
    def _command(self, name: str, payload: object = None) -> None:
        if self._thread is None or not self._thread.is_alive():
            if name == "reset":
                self._publisher.next_attempt()
            return
        done = threading.Event()
        self._commands.put((name, payload, done))
        self._wake_w.send(b"x")
        if not done.wait(_COMMAND_WAIT):
            raise RankMonitorError(f"the monitor thread did not handle {name!r} within {_COMMAND_WAIT:g} s")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.death = exc  # the owner's check_alive() turns this into an error that ends the job
            log.critical("the rank monitor thread stopped: %r; no rank is watched any more", exc)
            raise

    def _loop(self) -> None:
        interval = self.config.workload_check_interval
        next_check = time.monotonic() + interval
        while not self._stopping.is_set():
            # Serving and checking fail separately: a broken accept() (EMFILE) never stops deadline checks.
            if not self._guard.run("serving connections", self._serve, max(0.0, next_check - time.monotonic())):
                self._stopping.wait(min(interval, 0.05))  # the error would recur at once: do not spin
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + interval
                self._guard.run("checking deadlines", self._check_deadlines)

    def _serve(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            self._dispatch(key)

    def _dispatch(self, key: selectors.SelectorKey) -> None:
        if key.data == "server":
            self._conns.accept(self._server)
        elif key.data == "wake":
            self._wake_r.recv(4096)
            while not self._commands.empty():
                name, payload, done = self._commands.get_nowait()
                if name == "reset":
                    self._reset()
                elif name == "expect":
                    self._roster.expect(payload)  # type: ignore[arg-type]
                elif name == "see" and self._conns is not None:
                    self._conns.see_all()
                done.set()
        else:
            self._conns.receive(key.data)

    def _check_deadlines(self) -> None:
        found = self._conns.expired()
        found += self._roster.not_connected(self._conns.connected(), self.config.initial_rank_heartbeat_timeout,
                                            self.sources.get("initial_rank_heartbeat_timeout", "config"),
                                            time.monotonic_ns())
        if found:
            self._publisher.report_hangs(found)

    def _reset(self) -> None:
        self._close_ranks()
        self._roster.clear()
        self._progress.clear()
        self._publisher.next_attempt()
        if self._heartbeats.used > self._heartbeats.capacity // 2:
            # Slots are never reused within a file; start a fresh one while no rank uses the old.
            self._heartbeats.close()
            self._generation += 1
            self._heartbeats = HeartbeatFile(self._dir / f"heartbeats-{self._generation}.bin")

    def _close_ranks(self) -> None:
        if self._conns is not None:
            self._conns.close_all()
