"""Synthetic classification data generated from a seed (``data=synthetic``): nothing to download."""

from __future__ import annotations

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
