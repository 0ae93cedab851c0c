"""A tiny transformer encoder that reads the feature vector as a short sequence of tokens."""

from __future__ import annotations

import torch
from torch import nn


class TinyTransformer(nn.Module):
    """Feature vector -> ``in_features // token_size`` tokens -> one encoder layer -> mean pool -> logits.

    Takes ``in_features`` and ``num_classes`` like the template's models, so the synthetic data
    (or your own data config) plugs in unchanged.
    """

    def __init__(self, in_features: int, num_classes: int, token_size: int = 4, d_model: int = 32,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if in_features % token_size:
            raise ValueError(f"in_features ({in_features}) must be a multiple of token_size ({token_size})")
        self.token_size = token_size
        self.embed = nn.Linear(token_size, d_model)
        self.position = nn.Parameter(torch.zeros(in_features // token_size, d_model))
        self.encoder = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model,
                                                  dropout=dropout, batch_first=True)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x.view(x.shape[0], -1, self.token_size)) + self.position
        return self.head(self.encoder(tokens).mean(dim=1))
