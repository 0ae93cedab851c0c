"""Means of the objective's metrics over a log interval or a validation pass, summed on the device until read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


class MetricMeans:
    """Running sums of named scalars (tensors or numbers); :meth:`take` is the only host synchronisation."""

    def __init__(self) -> None:
        self._sums: dict[str, Any] = {}
        self._count = 0

    def add(self, metrics: Mapping[str, Any], weight: float = 1.0) -> None:
        """Add ``weight * value`` for each metric (a step of ``grad_accum`` micro-batches weighs each 1/n)."""
        for name, value in metrics.items():
            value = value.detach().float() * weight if torch.is_tensor(value) else float(value) * weight
            self._sums[name] = self._sums[name] + value if name in self._sums else value

    def count(self, n: int = 1) -> None:
        """``n`` more steps (or batches) in the mean."""
        self._count += n

    def take(self, prefix: str = "") -> dict[str, float]:
        """The means so far as rounded floats, named ``prefix + name``; starts over."""
        means = {f"{prefix}{name}": round(float(total) / max(self._count, 1), 6) for name, total in self._sums.items()}
        self._sums, self._count = {}, 0
        return means
