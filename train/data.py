"""A deterministic, resumable sharded batch iterator over any dataset (the loop's data machinery).

The iterator reads in the training process or through a ``DataLoader`` with worker processes
(``data.num_workers``); either way a batch is a function of its position alone, so a checkpoint
holds two integers and resuming is exact.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Iterator
from typing import Any

import torch

from ft import set_parent_death_signal, stop_signals_from_env


def _loader_worker_init(rank_pid: int, _worker_id: int) -> None:
    """In a loader worker: leave stop requests to the rank, and die the moment the rank dies (Linux).

    A scheduler may signal every process of a job (SLURM does so for a job step): a loader worker
    ended by that signal would crash its rank before the rank could save. The rank stops at a step
    boundary and shuts its loader down itself. torch's own watchdog notices a dead parent only
    after seconds; a rank SIGKILLed by the launcher (or killed with it) must leave no loader
    process behind.
    """
    for sig in {signal.SIGINT, *stop_signals_from_env()}:
        signal.signal(sig, signal.SIG_IGN)
    if not set_parent_death_signal():  # not Linux: the watchdog remains
        return
    if os.getppid() != rank_pid:  # the rank died before prctl took effect
        os._exit(1)


class BatchFetch(torch.utils.data.Dataset):
    """Batch ``(epoch, index)`` of one rank's shard: a pure function of seed, rank and position.

    Loader worker processes call it with keys from :class:`_EpochKeys`; the training process calls
    it directly when there are none. Each batch is fetched under its own seed, so a random transform
    in a user's dataset draws the same numbers whichever process fetches it and after any resume.
    """

    def __init__(self, dataset: Any, batch_size: int, seed: int, rank: int, world_size: int) -> None:
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:  # the keys are positions, not sample indices; the sampler bounds them
        return len(self.dataset)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed + epoch)
            self._epoch, self._order = epoch, torch.randperm(len(self.dataset), generator=gen)[self.rank::self.world_size]
        return self._order

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        indices = self._epoch_order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        with torch.random.fork_rng(devices=[]):  # leaves the caller's generator where it was
            torch.manual_seed((((self.seed * 1_000_003 + self.rank) * 1_000_003 + epoch) * 1_000_003 + index) % 2**63)
            if hasattr(self.dataset, "batch"):
                return self.dataset.batch(indices)
            return torch.utils.data.default_collate([self.dataset[int(i)] for i in indices])


class _EpochKeys(torch.utils.data.Sampler):
    """The keys left in the current epoch, read when the loader starts an epoch (after any resume)."""

    def __init__(self, batches: ShardedBatches) -> None:
        self._batches = batches

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start = self._batches.epoch, self._batches.batch_index
        return iter([(epoch, i) for i in range(start, self._batches.batches_per_epoch)])


class ShardedBatches:
    """Endless batches for one rank: epoch ``e`` is a permutation drawn from ``seed + e``, split by rank.

    The position (epoch, batch within epoch) is all the state there is, so resuming is exact and
    does not depend on any global random number generator. With ``num_workers > 0`` a
    ``DataLoader`` fetches ahead in worker processes; the position still counts only the batches
    the loop has taken, so what was prefetched and not used is fetched again after a resume.
    """

    def __init__(self, dataset: Any, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, persistent_workers: bool = True) -> None:
        per_rank = len(dataset) // world_size
        if batch_size < 1 or per_rank < batch_size:
            raise ValueError(
                f"batch_size {batch_size} needs at least {batch_size * world_size} samples for "
                f"{world_size} rank(s); the dataset has {len(dataset)}"
            )
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.batch_size, self.seed = batch_size, seed
        self.batches_per_epoch = per_rank // batch_size  # drop the ragged end: every rank, same count
        self.epoch, self.batch_index = 0, 0
        self._fetch = BatchFetch(dataset, batch_size, seed, rank, world_size)
        self._loader: torch.utils.data.DataLoader | None = None
        self._iter: Iterator[Any] | None = None
        if num_workers > 0:
            # batch_size=None: each key is already a whole batch, fetched by one worker. Its own
            # generator: starting an epoch draws the workers' seed, and a draw from the global one
            # would shift the training process's random numbers (dropout) after a resume.
            self._loader = torch.utils.data.DataLoader(
                self._fetch, batch_size=None, sampler=_EpochKeys(self), num_workers=num_workers,
                persistent_workers=persistent_workers, generator=torch.Generator().manual_seed(seed + rank),
                worker_init_fn=functools.partial(_loader_worker_init, os.getpid()))

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self.batch_index >= self.batches_per_epoch:
            self.epoch, self.batch_index, self._iter = self.epoch + 1, 0, None
        if self._loader is None:
            batch = self._fetch[(self.epoch, self.batch_index)]
        else:
            if self._iter is None:
                self._iter = iter(self._loader)  # persistent workers are reused, not restarted
            batch = next(self._iter)
        self.batch_index += 1
        return batch

    def peek(self) -> Any:
        """The next batch, fetched here without moving the position (a compile warm-up's input)."""
        epoch, index = (self.epoch + 1, 0) if self.batch_index >= self.batches_per_epoch else (self.epoch, self.batch_index)
        return self._fetch[(epoch, index)]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch_index": self.batch_index, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch_index = int(state["epoch"]), int(state["batch_index"])
        self._iter = None  # batches prefetched from the old position are dropped

    def close(self) -> None:
        """End the loader's worker processes (the last reference to the loader goes)."""
        self._iter = self._loader = None


def fixed_batches(dataset: Any, batch_size: int, num_batches: int) -> list[Any]:
    """The first ``num_batches`` batches in order (validation: same batches every time, every rank)."""
    count = min(num_batches, max(1, len(dataset) // batch_size))
    out = []
    for b in range(count):
        indices = torch.arange(b * batch_size, min((b + 1) * batch_size, len(dataset)))
        if hasattr(dataset, "batch"):
            out.append(dataset.batch(indices))
        else:
            out.append(torch.utils.data.default_collate([dataset[int(i)] for i in indices]))
    return out


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (inside dicts, lists and tuples) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(value, device) for value in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch
