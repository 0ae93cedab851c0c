"""A sweep in one sweep directory: runs batches of points and keeps its summary up to date.

``ft_launcher -m`` runs all its points as one batch; the ``hydra/launcher=ft`` plugin one batch per
call from Hydra's sweeper (Optuna asks for a few trials at a time). After each batch the summary
file lists every point run so far and the table shows that batch's points.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from launcher.sweeps import runner as sweep_runner
from launcher.sweeps import summary as sweep_summary
from launcher.sweeps.point import PointResult, SweepPoint

log = logging.getLogger("launcher")


class Sweep:
    def __init__(self, sweep_dir: Path, n_jobs: int = 1,
                 stop_signals: tuple[signal.Signals, ...] = sweep_runner.DEFAULT_STOP_SIGNALS) -> None:
        self.sweep_dir, self.n_jobs, self.stop_signals = sweep_dir, n_jobs, stop_signals
        self.results: list[PointResult] = []
        self.stop_requested = False

    def run(self, points: list[SweepPoint]) -> list[PointResult]:
        """Run a batch of points (skipping those already finished); rewrite the summary; show the batch."""
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        results, stopped = sweep_runner.run_points(points, self.n_jobs, self.stop_signals)
        self.stop_requested = self.stop_requested or stopped
        self.results.extend(results)
        rows = [sweep_summary.point_summary(r) for r in self.results]
        path = sweep_summary.write(self.sweep_dir, rows, self.exit_code)
        sweep_summary.show(self.sweep_dir, rows[-len(results):] if results else [])
        log.info("sweep summary written to %s (exit code %d)", path, self.exit_code)
        return results

    @property
    def exit_code(self) -> int:
        """75 while points remain (relaunch the same sweep), 1 if a point failed, else 0."""
        return sweep_runner.exit_code(self.results)
