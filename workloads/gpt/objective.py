"""The language model's objective (``objective=next_token``): next-token loss, perplexity, text samples at the end."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from train import Supervised
from workloads.gpt.sampling import log_samples


class NextToken(Supervised):
    """``criterion(model(ids), next_ids)`` plus ``ppl`` (so validation logs ``val_ppl``); samples text when done.

    ``samples`` (``sample:`` in ``experiment=gpt_small``) names the prompts rank 0 continues after the
    last step (``on_train_end``); null: none.
    """

    def __init__(self, criterion: nn.Module, samples: Any = None) -> None:
        super().__init__(criterion)
        self.samples = samples

    def __call__(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        loss, metrics = super().__call__(model, batch)
        # exp of a loss above 50 only overflows the plot; perplexity that high means "not learning yet".
        return loss, {**metrics, "ppl": torch.exp(loss.detach().float().clamp(max=50.0))}

    def on_train_end(self, module: nn.Module, device: torch.device) -> None:
        if self.samples:
            log_samples(module, self.samples, device)
