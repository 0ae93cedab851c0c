"""Synthetic data and sharded batches are deterministic and resume exactly; RNG state round-trips."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from train.checkpoint import rng
from train.data import ShardedBatches
from workloads.classification.data import SyntheticClassification


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


def test_loader_worker_processes_give_the_same_batches_and_resume_exactly():
    ds = dataset()
    reference = take(ShardedBatches(ds, batch_size=16, seed=7, rank=1, world_size=2), 20)
    first = ShardedBatches(ds, batch_size=16, seed=7, rank=1, world_size=2, num_workers=2)
    try:
        got = take(first, 11)  # the workers have fetched ahead of what was taken
        state = first.state_dict()
    finally:
        first.close()
    resumed = ShardedBatches(ds, batch_size=16, seed=7, rank=1, world_size=2, num_workers=2)
    try:
        resumed.load_state_dict(state)
        got += take(resumed, 9)  # crosses the epoch boundary (8 batches per epoch per rank)
    finally:
        resumed.close()
    assert all(torch.equal(x, y) for x, y in zip(got, reference, strict=True))


class _NoisyDataset(torch.utils.data.Dataset):
    """A random transform, as a user's augmentation would draw it."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.full((2,), float(index)) + torch.rand(2)


def test_a_random_transform_draws_the_same_numbers_in_a_worker_and_after_a_resume():
    torch.manual_seed(0)
    inline = take(ShardedBatches(_NoisyDataset(), batch_size=4, seed=5), 6)
    before = torch.rand(1)
    torch.manual_seed(0)
    take(ShardedBatches(_NoisyDataset(), batch_size=4, seed=5), 6)
    assert torch.equal(torch.rand(1), before), "fetching leaves the training process's generator alone"
    workers = ShardedBatches(_NoisyDataset(), batch_size=4, seed=5, num_workers=2)
    try:
        workers.load_state_dict({"epoch": 0, "batch_index": 2, "seed": 5})
        torch.manual_seed(0)
        assert all(torch.equal(x, y) for x, y in zip(take(workers, 4), inline[2:], strict=True))
        assert torch.equal(torch.rand(1), before), "starting the loader draws nothing from it either"
    finally:
        workers.close()


_STUCK_RANK = """
import threading, torch
from train.data import ShardedBatches

class Stuck(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        threading.Event().wait()  # a user's dataset busy for good (slow storage, a deadlock)

next(ShardedBatches(Stuck(), batch_size=2, seed=0, num_workers=1))
"""


def test_a_loader_worker_busy_in_the_dataset_dies_with_its_rank():
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from ft_helpers.train_jobs import alive, descendants

    rank = subprocess.Popen([sys.executable, "-c", _STUCK_RANK], cwd=Path(__file__).resolve().parents[2])
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not workers and time.monotonic() < deadline and rank.poll() is None:
            workers = [pid for pid in descendants(rank.pid) if alive(pid)]
            time.sleep(0.02)
        assert workers, "the rank started no loader worker"
        rank.kill()
        rank.wait(10)
        deadline = time.monotonic() + 3  # at once, by its parent-death signal; never by itself
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(alive(w) for w in workers), f"loader worker(s) {workers} outlived their rank"
    finally:
        rank.kill()
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)
