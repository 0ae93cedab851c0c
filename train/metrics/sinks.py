"""Where metrics go (``conf/logger/``): one small interface, ``log(metrics, step)`` and ``close()``.

Rank 0 builds the sinks chosen with ``logger=jsonl`` (default), ``logger=csv``, ``logger=tensorboard``
or several at once, ``logger=[jsonl,tensorboard]``. A new sink is one subclass of
:class:`MetricsSink` and one YAML file with its ``_target_``. Every sink appends: a restarted
attempt continues the same files with the true global step, so curves run on across restarts.
Events (an attempt starting, a checkpoint saved, a stop) are logged like metrics with an
``event`` key, so a plot can show where time was lost. A NaN or infinite value is written as JSON
``null`` (:func:`json_safe`): the files stay valid JSON for strict parsers.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ft import json_safe

log = logging.getLogger(__name__)


class MetricsSink(ABC):
    """A destination for metrics.

    The loop passes where and when: ``run_dir``, ``attempt`` (0, 1, ... across restarts) and
    ``start_step`` (the step this attempt resumed from); the YAML passes the rest.
    """

    def __init__(self, run_dir: str | Path, attempt: int = 0, start_step: int = 0) -> None:
        self.run_dir, self.attempt, self.start_step = Path(run_dir), attempt, start_step

    @abstractmethod
    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Record ``metrics`` (name -> number, or ``event`` -> name with its fields) at global ``step``."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release; called once, whatever ended the loop."""


class JsonlSink(MetricsSink):
    """One JSON object per line (``metrics.jsonl``), flushed per line so it can be tailed."""

    def __init__(self, run_dir: str | Path, attempt: int = 0, start_step: int = 0,
                 filename: str = "metrics.jsonl") -> None:
        super().__init__(run_dir, attempt, start_step)
        self._file = (self.run_dir / filename).open("a", buffering=1)

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        record = {"step": step, "time": round(time.time(), 3), "attempt": self.attempt, **json_safe(metrics)}
        self._file.write(json.dumps(record, allow_nan=False) + "\n")

    def close(self) -> None:
        self._file.close()


class CsvSink(MetricsSink):
    """Long format, one row per value: ``step,time,attempt,name,value``; any new metric fits the same columns."""

    COLUMNS = ("step", "time", "attempt", "name", "value")

    def __init__(self, run_dir: str | Path, attempt: int = 0, start_step: int = 0,
                 filename: str = "metrics.csv") -> None:
        super().__init__(run_dir, attempt, start_step)
        path = self.run_dir / filename
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="", buffering=1)
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(self.COLUMNS)

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        now = round(time.time(), 3)
        for name, value in metrics.items():
            self._writer.writerow((step, now, self.attempt, name, value))

    def close(self) -> None:
        self._file.close()


class MetricsSinks(MetricsSink):
    """Several sinks as one; also remembers the last value of each metric (``final_metrics.json``)."""

    def __init__(self, sinks: list[MetricsSink]) -> None:
        self.sinks = sinks
        self.last: dict[str, Any] = {}

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if "event" not in metrics:
            self.last.update(metrics)
        for sink in self.sinks:
            sink.log(metrics, step)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # one sink failing to flush must not hide another's data
                log.warning("closing %s failed: %s", type(sink).__name__, exc)


def build_sinks(logger_cfg: DictConfig | None, run_dir: Path, attempt: int, start_step: int) -> MetricsSinks:
    """Instantiate every sink under ``cfg.logger`` (name -> ``_target_`` node); none configured: no sink."""
    from train.components import build  # lazily: components imports torch, this module is torch-free

    sinks: list[MetricsSink] = []
    for name, node in (logger_cfg or {}).items():
        if node is None:
            continue
        sink = build(node, f"logger.{name}", run_dir=str(run_dir), attempt=attempt, start_step=start_step)
        if not isinstance(sink, MetricsSink):
            from train.errors import TrainConfigError

            raise TrainConfigError(f"logger.{name}: {type(sink).__name__} is not a train.metrics.sinks.MetricsSink")
        sinks.append(sink)
    return MetricsSinks(sinks)
