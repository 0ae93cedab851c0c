"""Synthetic data and sharded batches are deterministic and resume exactly; RNG state round-trips."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from train import rng
from train.data import ShardedBatches, SyntheticClassification


def dataset(seed: int = 3, split: str = "train") -> SyntheticClassification:
    return SyntheticClassification(num_samples=256, num_features=8, num_classes=4, seed=seed, split=split)


def take(batches: ShardedBatches, n: int) -> list[torch.Tensor]:
    return [next(batches)[0] for _ in range(n)]


def test_dataset_is_a_function_of_seed_and_split():
    a, b = dataset(), dataset()
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(dataset(seed=4).inputs, a.inputs)
    assert not torch.equal(dataset(split="val").inputs, a.inputs)
    assert len(a.targets.unique()) > 1  # a real task, not one class


def test_ranks_see_disjoint_shards_of_each_epoch():
    ds = dataset()
    seen = []
    for rank in range(2):
        batches = ShardedBatches(ds, batch_size=16, seed=7, rank=rank, world_size=2)
        seen.append(torch.cat(take(batches, batches.batches_per_epoch)))
    rows = {tuple(r.tolist()) for r in torch.cat(seen)}
    assert len(rows) == sum(len(s) for s in seen)


def test_resume_continues_exactly_and_epochs_reshuffle():
    ds = dataset()
    full = ShardedBatches(ds, batch_size=16, seed=7)
    reference = take(full, 40)  # crosses epoch boundaries (16 batches per epoch)
    first = ShardedBatches(ds, batch_size=16, seed=7)
    take(first, 21)
    resumed = ShardedBatches(ds, batch_size=16, seed=7)
    resumed.load_state_dict(first.state_dict())
    assert all(torch.equal(x, y) for x, y in zip(take(resumed, 19), reference[21:], strict=True))
    assert not torch.equal(reference[0], reference[16])


def test_rng_state_round_trips_through_a_weights_only_checkpoint():
    rng.seed_everything(11)
    buffer = io.BytesIO()
    torch.save({"rng": rng.capture()}, buffer)
    expected = (random.random(), np.random.rand(), torch.rand(3))
    buffer.seek(0)
    rng.restore(torch.load(buffer, weights_only=True)["rng"])
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(3), expected[2])
