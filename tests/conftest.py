"""Shared fixtures: compose the project's Hydra config the way train.py would, without argv."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ft_helpers.paths import CONF_DIR
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig


@pytest.fixture
def compose_config() -> Callable[..., DictConfig]:
    """``compose_config(*overrides, config_name="train", return_hydra_config=False)`` -> DictConfig.

    Importing ``train`` first registers the ConfigStore schema and the resolvers ``conf/`` uses.
    """
    import train  # noqa: F401

    def _compose(*overrides: str, config_name: str = "train", return_hydra_config: bool = False) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)

    return _compose
