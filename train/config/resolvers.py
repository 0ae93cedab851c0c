"""OmegaConf resolvers the config in ``conf/`` uses; registered when ``train`` is imported.

``train.py`` imports ``train`` before ``@hydra.main`` composes the config, so the resolvers exist
by the time Hydra resolves ``hydra.output_subdir``. The launcher never needs them: it reads only
``hydra.run.dir`` and ``hydra.sweep.*``, which use Hydra's built-in resolvers.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from ft import rank_from_env


def rank_zero_only(value: str) -> str | None:
    """``value`` on global rank 0 (or without a rank), ``None`` elsewhere.

    Used as ``hydra.output_subdir: ${rank_zero_only:.hydra}`` so only one rank writes Hydra's
    ``.hydra/`` files into the shared run directory.
    """
    return value if rank_from_env() == 0 else None


def register_resolvers() -> None:
    """Register the resolvers (idempotent)."""
    if not OmegaConf.has_resolver("rank_zero_only"):
        OmegaConf.register_new_resolver("rank_zero_only", rank_zero_only)
