"""TensorBoard event files in ``<run_dir>/tensorboard`` (``logger=tensorboard``; ``pip install pulsetrain[tensorboard]``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from train.errors import TrainConfigError
from train.metrics.sinks import MetricsSink


class TensorBoardSink(MetricsSink):
    """Scalars per metric; events as text plus an ``events/<name>`` scalar, so they show on the curves.

    Each attempt adds an event file to the same directory and logs the true global step, so
    TensorBoard draws one curve across restarts. Steps after the one an attempt resumed from (redone
    from that checkpoint) are purged from the view (``purge_step``): the curve shows what the weights
    went through, not the lost work twice.
    """

    def __init__(self, run_dir: str | Path, attempt: int = 0, start_step: int = 0, subdir: str = "tensorboard",
                 flush_secs: int = 10) -> None:
        super().__init__(run_dir, attempt, start_step)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise TrainConfigError("logger=tensorboard needs the tensorboard package: "
                                   "pip install 'pulsetrain[tensorboard]'") from None
        self.log_dir = self.run_dir / subdir
        self._writer = SummaryWriter(str(self.log_dir), purge_step=start_step + 1 if start_step else None, flush_secs=flush_secs)

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        event = metrics.get("event")
        if event is not None:
            fields = ", ".join(f"{k}={v}" for k, v in metrics.items() if k != "event")
            self._writer.add_text("events", f"{event}: {fields}", step)
            self._writer.add_scalar(f"events/{event}", float(metrics.get("attempt", self.attempt)), step)
            return
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        self._writer.close()
