"""Datasets that fail the same way in every attempt, or at a different step in each: for the restart verdicts.

``CorruptSample``: reading item ``bad_index`` raises ``ValueError`` (a corrupt sample), every time, so
every attempt fails at the same step. ``KilledAtRandom``: rank ``rank`` SIGKILLs itself after a number
of batches drawn per attempt from ``seed`` (between ``low`` and ``high``), so each attempt fails at
another step. Used as ``data.dataset._target_=failing_data.<class>`` with ``tests/ft_helpers`` on
``PYTHONPATH`` and ``data.num_workers=0`` (the read happens in the rank itself).
"""

from __future__ import annotations

import os
import random
import signal

import torch

from workloads.classification.data import SyntheticClassification


class CorruptSample(SyntheticClassification):
    def __init__(self, bad_index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bad_index = bad_index

    def _check(self, indices: torch.Tensor) -> None:
        if bool((indices == self.bad_index).any()):
            raise ValueError(f"corrupt sample {self.bad_index}")

    def __getitem__(self, index: int):
        self._check(torch.tensor([index]))
        return super().__getitem__(index)

    def batch(self, indices: torch.Tensor):
        self._check(indices)
        return super().batch(indices)


class KilledAtRandom(SyntheticClassification):
    def __init__(self, seed_kills: int, low: int, high: int, rank: int, **kwargs) -> None:
        super().__init__(**kwargs)
        attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
        draws = random.Random(seed_kills)
        after = [draws.randint(low, high) for _ in range(attempt + 1)][-1]
        mine = int(os.environ.get("RANK", "0")) == rank and attempt < 5
        self._left = after if mine else None

    def batch(self, indices: torch.Tensor):
        if self._left is not None:
            self._left -= 1
            if self._left < 0:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().batch(indices)
