"""The language model's objective (``objective=next_token``): next-token loss, perplexity, text samples at the end."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from train import Supervised
from workloads.gpt.sampling import log_samples


class NextToken(Supervised):
    """``criterion(model(ids), next_ids)``; ``ppl`` = exp of the mean loss (validation: ``val_ppl``); samples when done.

    ``samples`` (``sample:`` in ``experiment=gpt_small``) names the prompts rank 0 continues after the
    last step (``on_train_end``); null: none.
    """

    def __init__(self, criterion: nn.Module, samples: Any = None) -> None:
        super().__init__(criterion)
        self.samples = samples

    def derive(self, means: Mapping[str, float]) -> dict[str, float]:
        """Perplexity from the mean loss (of the validation batches; in training, of the logged step)."""
        if "loss" not in means or not math.isfinite(means["loss"]):
            return {}
        # exp of a loss above 50 only overflows the plot; perplexity that high means "not learning yet".
        return {"ppl": math.exp(min(means["loss"], 50.0))}

    def on_train_end(self, module: nn.Module, device: Any) -> None:
        if self.samples:
            log_samples(module, self.samples, device)
