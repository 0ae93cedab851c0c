"""Seeding and the random-number-generator state of one rank, in a form ``torch.load(weights_only=True)`` accepts."""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (the CPU generator, and CUDA's lazily, for whichever device is used)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture(device: torch.device | None = None) -> dict[str, Any]:
    """This rank's generator states; numpy's array becomes a list so no pickle is needed to load it.

    CUDA's state is that of ``device`` alone, and only when it is a CUDA device: a rank touches no other
    GPU (no context on its neighbours' devices), a CPU run never initialises CUDA, and the checkpoint
    does not depend on how many GPUs the saving node had.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Put back what :func:`capture` returned; CUDA's state only onto ``device``, and only when it is CUDA."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is None or device is None or device.type != "cuda":
        return
    if isinstance(cuda, (list, tuple)):  # written before this change: one state per GPU of the saving node
        index = device.index if device.index is not None else 0
        if index >= len(cuda):
            log.warning("the checkpoint holds CUDA random states for %d GPU(s), none for %s: its CUDA generator "
                        "starts from the seed, so random numbers differ from an uninterrupted run", len(cuda), device)
            return
        cuda = cuda[index]
    torch.cuda.set_rng_state(cuda, device)
