"""The objective seam's protocol: the default objective, and the metrics an objective derives from means.

An objective is ``objective(model, batch) -> (loss, metrics)``; the loop averages ``metrics`` (and the
validation loss) itself. A metric that is not a mean of per-batch values (perplexity is exp of the
*mean* loss, not the mean of exp) comes from an optional ``objective.derive(means) -> dict``, called
with the means of an interval or of a validation pass, unprefixed (``loss`` included), and whose
values are logged beside them under their names (validation: ``val_<name>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class Supervised:
    """The default objective (``objective=supervised``): ``criterion(model(inputs), targets)``, no extra metrics."""

    def __init__(self, criterion: nn.Module) -> None:
        self.criterion = criterion

    def __call__(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        inputs, targets = batch
        return self.criterion(model(inputs), targets), {}


def with_derived(objective: Any, means: Mapping[str, float], prefix: str = "") -> dict[str, float]:
    """``means`` plus what ``objective.derive(means)`` returns (when it has one), named ``prefix + name``."""
    values = dict(means)
    derive = getattr(objective, "derive", None)
    if derive is not None:
        values.update({name: round(float(value), 6) for name, value in derive(dict(means)).items()})
    return {f"{prefix}{name}": value for name, value in values.items()}
