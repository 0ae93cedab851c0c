"""The fork's objective: cross-entropy plus a small penalty on the logits; reports ``acc`` (and ``val_acc``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class PenalisedClassification:
    """``objective(model, batch) -> (loss, metrics)``: what the loop calls in training and validation."""

    def __init__(self, logit_penalty: float = 1e-3) -> None:
        self.logit_penalty = logit_penalty

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        logits = model(batch)
        cross_entropy = F.cross_entropy(logits, batch["label"])
        loss = cross_entropy + self.logit_penalty * logits.pow(2).mean()
        accuracy = (logits.argmax(dim=1) == batch["label"]).float().mean()
        return loss, {"acc": accuracy, "cross_entropy": cross_entropy.detach()}
