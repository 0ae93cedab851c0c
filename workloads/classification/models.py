"""The two small models the template ships: an MLP (default) and a 1-D conv net (the forking example).

A model is any ``torch.nn.Module``; the default objective (``train.objective.Supervised``) calls it on a
batch's inputs and compares its class logits with the targets (docs/forking.md).
"""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Feature vector -> class logits: ``depth`` hidden layers with GELU and dropout."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 256, depth: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Conv1dNet(nn.Module):
    """Feature vector read as a 1-channel signal -> class logits: two conv blocks and a linear head.

    ``in_features`` is accepted so every model takes the same arguments from ``conf/model/``;
    adaptive pooling makes the net work for any input length.
    """

    def __init__(self, in_features: int, num_classes: int, channels: int = 16, kernel_size: int = 5,
                 dropout: float = 0.1) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, kernel_size, padding=pad), nn.GELU(),
            nn.Conv1d(channels, channels, kernel_size, padding=pad), nn.GELU(),
            nn.AdaptiveAvgPool1d(8), nn.Dropout(dropout),
        )
        self.head = nn.Linear(channels * 8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)).flatten(1))
