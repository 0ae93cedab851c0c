"""A checkpoint is one mapping of stateful parts: a new part (an EMA, a grad scaler) is one entry."""

from __future__ import annotations

import logging

import torch
from torch import nn

from train.checkpoint import state as training_state
from train.checkpoint.store import CheckpointStore
from train.components import Components
from train.data import ShardedBatches
from train.distributed import DistributedContext
from train.objective import Supervised
from workloads.classification.data import SyntheticClassification

CTX = DistributedContext(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), is_distributed=False)


class Ema:
    """The smallest extra part: anything with state_dict() / load_state_dict()."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def state_dict(self):
        return {"value": self.value}

    def load_state_dict(self, state):
        self.value = state["value"]


class FtState:
    def __init__(self):
        self.loaded = None

    def state_dict(self):
        return {"format": 2}

    def load_state_dict(self, state):
        self.loaded = state


def components(**extra) -> Components:
    torch.manual_seed(0)
    module = nn.Linear(4, 2)
    data = ShardedBatches(SyntheticClassification(32, 4, 2, seed=0), 4, seed=0)
    return Components(module, module, Supervised(nn.CrossEntropyLoss()), torch.optim.SGD(module.parameters(), lr=0.1), None,
                      data, [], extra_state=extra)


def test_every_part_is_saved_and_each_gets_its_own_state_back(tmp_path):
    store = CheckpointStore(tmp_path)
    parts = components(ema=Ema(0.5))
    next(parts.train_batches)
    with torch.no_grad():
        parts.module.weight.add_(1.0)
    stateful = training_state.checkpoint_parts(CTX, parts, FtState())
    assert list(stateful) == ["model", "optimizer", "ema", "data", "rng", "ft"]
    training_state.save(CTX, store, stateful, 7, {"model": "m"}, in_save=lambda: None)

    fresh, ft = components(ema=Ema()), FtState()
    step = training_state.resume(CTX, store, training_state.checkpoint_parts(CTX, fresh, ft), {"model": "m"})
    assert step == 7 and fresh.extra_state["ema"].value == 0.5 and ft.loaded == {"format": 2}
    assert torch.equal(fresh.module.weight, parts.module.weight)
    assert fresh.train_batches.state_dict() == parts.train_batches.state_dict()


def test_a_part_added_since_the_checkpoint_starts_fresh_with_a_warning(tmp_path, caplog):
    store = CheckpointStore(tmp_path)
    training_state.save(CTX, store, training_state.checkpoint_parts(CTX, components(), FtState()), 3, {},
                        in_save=lambda: None)
    later = components(ema=Ema(0.25))
    with caplog.at_level(logging.WARNING):
        assert training_state.resume(CTX, store, training_state.checkpoint_parts(CTX, later, FtState()), {}) == 3
    assert later.extra_state["ema"].value == 0.25
    assert "has no 'ema'" in caplog.text
