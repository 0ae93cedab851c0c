"""Dict samples ``{"features", "mask", "label"}``: points labelled by a fixed random teacher, some features masked."""

from __future__ import annotations

import torch


class MaskedPoints(torch.utils.data.Dataset):
    """``num_samples`` points of ``num_features``; a mask hides about ``masked`` of each point's features."""

    def __init__(self, num_samples: int, num_features: int, num_classes: int, seed: int, split: str = "train",
                 masked: float = 0.25) -> None:
        teacher = torch.randn(num_features, num_classes, generator=torch.Generator().manual_seed(seed))
        points = torch.Generator().manual_seed(seed + (0 if split == "train" else 7919))
        self.features = torch.randn(num_samples, num_features, generator=points)
        self.mask = (torch.rand(num_samples, num_features, generator=points) >= masked).float()
        self.label = (self.features @ teacher).argmax(dim=1)

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[index], "mask": self.mask[index], "label": self.label[index]}
