"""Synthetic data generated from a seed (no download) and a deterministic, resumable sharded batch iterator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

_SPLIT_OFFSETS = {"train": 0, "val": 1_000_003}


class SyntheticClassification(torch.utils.data.Dataset):
    """Points labelled by a fixed random "teacher" network: learnable, reproducible, tiny.

    The teacher depends only on ``seed``; the inputs on ``seed`` and ``split``, so the train and
    validation splits share the task but not the points.
    """

    def __init__(
        self, num_samples: int, num_features: int, num_classes: int, seed: int, split: str = "train"
    ) -> None:
        if split not in _SPLIT_OFFSETS:
            raise ValueError(f"split must be one of {sorted(_SPLIT_OFFSETS)}, got {split!r}")
        teacher_gen = torch.Generator().manual_seed(seed)
        w1 = torch.randn(num_features, 64, generator=teacher_gen) / num_features**0.5
        w2 = torch.randn(64, num_classes, generator=teacher_gen) / 8.0
        point_gen = torch.Generator().manual_seed(seed + _SPLIT_OFFSETS[split])
        self.inputs = torch.randn(num_samples, num_features, generator=point_gen)
        self.targets = (torch.tanh(self.inputs @ w1) @ w2).argmax(dim=1)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch in one indexing operation (the fast path the loader uses when present)."""
        return self.inputs[indices], self.targets[indices]


class ShardedBatches:
    """Endless batches for one rank: epoch ``e`` is a permutation drawn from ``seed + e``, split by rank.

    The position (epoch, batch within epoch) is all the state there is, so resuming is exact and
    does not depend on any global random number generator.
    """

    def __init__(
        self, dataset: Any, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        per_rank = len(dataset) // world_size
        if batch_size < 1 or per_rank < batch_size:
            raise ValueError(
                f"batch_size {batch_size} needs at least {batch_size * world_size} samples for "
                f"{world_size} rank(s); the dataset has {len(dataset)}"
            )
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = per_rank // batch_size  # drop the ragged end: every rank, same count
        self.epoch, self.batch_index = 0, 0
        self._order: torch.Tensor | None = None

    def _epoch_order(self) -> torch.Tensor:
        if self._order is None:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            self._order = torch.randperm(len(self.dataset), generator=gen)[self.rank :: self.world_size]
        return self._order

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.batch_index >= self.batches_per_epoch:
            self.epoch, self.batch_index, self._order = self.epoch + 1, 0, None
        start = self.batch_index * self.batch_size
        indices = self._epoch_order()[start : start + self.batch_size]
        self.batch_index += 1
        if hasattr(self.dataset, "batch"):
            return self.dataset.batch(indices)
        return torch.utils.data.default_collate([self.dataset[int(i)] for i in indices])

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch_index": self.batch_index, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch_index, self._order = int(state["epoch"]), int(state["batch_index"]), None


def fixed_batches(dataset: Any, batch_size: int, num_batches: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``num_batches`` batches in order (validation: same batches every time, every rank)."""
    count = min(num_batches, max(1, len(dataset) // batch_size))
    out = []
    for b in range(count):
        indices = torch.arange(b * batch_size, min((b + 1) * batch_size, len(dataset)))
        if hasattr(dataset, "batch"):
            out.append(dataset.batch(indices))
        else:
            out.append(torch.utils.data.default_collate([dataset[int(i)] for i in indices]))
    return out
