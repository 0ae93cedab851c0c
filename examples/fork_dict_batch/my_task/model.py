"""A model whose input is the whole dict batch: it reads the features where the mask lets it."""

from __future__ import annotations

import torch
from torch import nn


class MaskedMLP(nn.Module):
    def __init__(self, num_features: int, num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * num_features, hidden), nn.GELU(), nn.Linear(hidden, num_classes))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(torch.cat([batch["features"] * batch["mask"], batch["mask"]], dim=1))
