"""What a checkpoint must match to be resumed: the model's and the data's config, compared without ``_target_``.

The fingerprint saved in a checkpoint is the config as it was, class paths included (a person
reading it sees the class). Checking compares it without the ``_target_`` names (:func:`comparable`),
so a class moved to another module (the shipped workloads moved from ``train.models`` to
``workloads.classification.models``) still resumes its run dirs; a different class with other
arguments differs in its values, and one whose weights do not fit is refused when its state loads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

TARGET = "_target_"


def _without_targets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_targets(v) for k, v in value.items() if k != TARGET}
    if isinstance(value, list):
        return [_without_targets(v) for v in value]
    return value


def fingerprint(cfg: DictConfig) -> dict[str, str]:
    """The config sections a checkpoint must match: the model and the data it was trained on."""
    def text(node: Any) -> str:
        return json.dumps(OmegaConf.to_container(node, resolve=True), sort_keys=True)

    return {"model": text(cfg.model), "data": text(cfg.data.dataset)}


def comparable(fingerprint: Mapping[str, str]) -> dict[str, str]:
    """``fingerprint`` without its ``_target_`` names: what :meth:`CheckpointStore.load_newest` compares."""
    out = {}
    for key, text in fingerprint.items():
        try:
            out[key] = json.dumps(_without_targets(json.loads(text)), sort_keys=True)
        except (TypeError, ValueError):
            out[key] = text
    return out


def measured_on(cfg: DictConfig, world_size: int) -> dict[str, Any]:
    """What calculated timeouts depend on: the world size and the config of what a step does.

    Keys that do not change how long a step or a save takes (max_steps, logging) are left out, so a
    longer run of the same job keeps its calibration.
    """
    trainer = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items()
               if k not in ("max_steps", "log_every", "progress")}
    text = json.dumps({**fingerprint(cfg), "trainer": trainer}, sort_keys=True, default=str)
    return {"world_size": world_size, "config": hashlib.sha256(text.encode()).hexdigest()[:12]}
