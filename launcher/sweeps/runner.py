"""The one sweep runner behind ``ft_launcher -m`` and ``hydra/launcher=ft``.

Each point runs as its own ft_launcher process (its own rank monitor, restart budget and, with
``--standalone``, rendezvous on a free port), ``n_jobs`` at a time. Points an earlier run of the
same sweep finished are skipped; the others resume from their checkpoints. A stop signal is
forwarded to the running points (each saves a checkpoint and exits 75) and no point starts after it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator

from ft import set_parent_death_signal
from launcher.job.outcome import Outcome, worst
from launcher.sweeps import point as sweep_point
from launcher.sweeps.point import PointResult, SweepPoint

log = logging.getLogger("launcher")
DEFAULT_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_POLL_S = 0.1


class _Stop:
    """Stop signals during the sweep: the first stops starting points; each is forwarded as SIGTERM."""

    def __init__(self, running: dict[int, subprocess.Popen]) -> None:
        self.requested: str | None = None
        self.event = threading.Event()
        self._running = running

    def handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.requested is None:
            log.warning("%s: stopping the running point(s) cleanly; no new point starts (relaunch the same "
                        "sweep to continue)", name)
        self.requested = self.requested or name
        for proc in list(self._running.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # a second one tells ft_launcher to kill its workers now
        self.event.set()

    @contextlib.contextmanager
    def installed(self, signals: tuple[signal.Signals, ...]) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_points(points: list[SweepPoint], n_jobs: int = 1,
               stop_signals: tuple[signal.Signals, ...] = DEFAULT_STOP_SIGNALS) -> tuple[list[PointResult], bool]:
    """Run the points to their end; returns one result per point (in order) and whether a stop was requested."""
    results: dict[int, PointResult] = {}
    todo: deque[SweepPoint] = deque()
    for point in points:
        record, refusal = sweep_point.earlier_run(point)
        if refusal:
            log.error("point %s: %s", point.label, refusal)
            results[point.number] = PointResult(point, Outcome.BAD_INPUT, Outcome.BAD_INPUT.exit_code,
                                                message=refusal)
        elif record and record.get("status") == "finished":
            log.info("point %s: already finished in %s; skipped", point.label, point.run_dir)
            results[point.number] = PointResult(point, Outcome.ALREADY_FINISHED, Outcome.ALREADY_FINISHED.exit_code,
                                                record.get("started_at"), record.get("ended_at"))
        else:
            if record:
                log.info("point %s: %s in an earlier run; resuming it in %s", point.label,
                         record.get("status", "interrupted"), point.run_dir)
            todo.append(point)
    running: dict[int, subprocess.Popen] = {}
    started: dict[int, tuple[SweepPoint, float]] = {}
    stop = _Stop(running)
    with stop.installed(stop_signals):
        while (todo and not stop.requested) or running:
            while todo and len(running) < max(1, n_jobs) and not stop.requested:
                point = todo.popleft()
                running[point.number] = _start(point, n_jobs > 1)
                started[point.number] = (point, time.time())
            for number, proc in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[number]
                point, began = started[number]
                results[number] = _finish(point, code, began)
            stop.event.wait(_POLL_S)
            stop.event.clear()
    for point in todo:
        results[point.number] = PointResult(point, Outcome.NOT_STARTED)
    return [results[p.number] for p in points], stop.requested is not None


def _start(point: SweepPoint, own_log: bool) -> subprocess.Popen:
    point.run_dir.mkdir(parents=True, exist_ok=True)
    sweep_point.write(point, "running", started_at=round(time.time(), 3))
    output = None
    if own_log:  # points in parallel: one log file each, instead of interleaved lines
        output = (point.run_dir / "ft_launcher.log").open("ab")
        log.info("point %s: started; its output goes to %s", point.label, output.name)
    else:
        log.info("point %s: started in %s", point.label, point.run_dir)
    try:
        # Its own session: a Ctrl-C in the terminal reaches the point once, forwarded by the handler above.
        return subprocess.Popen(point.command, stdout=output, stderr=subprocess.STDOUT if output else None,
                                start_new_session=True, preexec_fn=set_parent_death_signal)
    finally:
        if output is not None:
            output.close()


def _finish(point: SweepPoint, code: int, began: float) -> PointResult:
    ended = time.time()
    result = PointResult(point, Outcome.of_exit_code(code), code, round(began, 3), round(ended, 3))
    sweep_point.write(point, result.outcome.value if result.outcome != Outcome.BAD_INPUT else "failed",
                      exit_code=code, started_at=result.started_at, ended_at=result.ended_at)
    log.info("point %s: %s (exit code %d) after %.1f s", point.label, result.outcome.value, code, ended - began)
    return result


def exit_code(results: list[PointResult]) -> int:
    """75 while points remain (stopped or not started), else 1 if a point failed, else 0."""
    return int(worst([r.outcome for r in results]).exit_code)
