"""CheckpointStore: atomic writes, keep-last-K, corrupt fallback, incompatible config, nothing ever lost."""

from __future__ import annotations

import logging

import pytest
import torch

from train.checkpoint.store import CheckpointStore
from train.errors import CheckpointError, CheckpointReadError

FP = {"model": "mlp", "data": "synthetic"}


def state(value: float) -> dict:
    return {"model": {"w": torch.full((4,), value)}, "fingerprint": FP}


def saved(store: CheckpointStore, *steps: int) -> list:
    for step in steps:
        store.save(step, state(float(step)))
    return store.checkpoints()


def test_save_is_atomic_and_self_verifying(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=3)
    (ckpt,) = saved(store, 7)
    assert ckpt.step == 7 and ckpt.path.name.startswith("step_00000007.") and ckpt.path.suffix == ".pt"
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.path.name]  # no temporary left behind
    assert torch.equal(store.load(ckpt)["model"]["w"], torch.full((4,), 7.0))


def test_a_failed_save_leaves_the_previous_checkpoints_untouched(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=1)
    before = saved(store, 10)

    def crash() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        store.save(20, state(20.0), on_written=crash)
    assert store.checkpoints() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [before[0].path.name]


def test_keeps_only_the_newest_k(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=2)
    assert [c.step for c in saved(store, 1, 2, 3, 4)] == [3, 4]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_newest_falls_back_to_previous_and_is_kept(tmp_path, caplog, damage):
    store = CheckpointStore(tmp_path, keep_last=3)
    older, newest = saved(store, 10, 20)[-2:]
    data = bytearray(newest.path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    newest.path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        ckpt, loaded = store.load_newest(FP)
    assert ckpt == older and loaded["step"] == 10
    assert "corrupt" in caplog.text and newest.path.name in caplog.text
    assert (tmp_path / (newest.path.name + ".corrupt")).exists()  # kept for inspection, not deleted
    # The corrupt file is out of the rotation: a new save and pruning never touch it.
    store.save(30, state(30.0))
    assert (tmp_path / (newest.path.name + ".corrupt")).exists()


def test_no_checkpoint_means_fresh_start(tmp_path):
    assert CheckpointStore(tmp_path / "missing").load_newest(FP) is None
    assert CheckpointStore(tmp_path).load_newest(FP) is None


def test_checkpoints_that_exist_but_cannot_be_loaded_never_become_a_silent_fresh_start(tmp_path):
    (only,) = saved(CheckpointStore(tmp_path), 5)
    only.path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="none loadable.*checkpoint.allow_fresh_start=true"):
        CheckpointStore(tmp_path).load_newest(FP)
    # Set aside once, still refused on the next launch: the .corrupt file is evidence of lost work.
    with pytest.raises(CheckpointError, match="allow_fresh_start"):
        CheckpointStore(tmp_path).load_newest(FP)
    assert CheckpointStore(tmp_path).load_newest(FP, allow_fresh_start=True) is None
    assert (tmp_path / (only.path.name + ".corrupt")).read_bytes() == b"garbage"


class Unlisted:
    """A type torch.load(weights_only=True) refuses, like one a torch upgrade stops allowing."""


def test_a_checkpoint_weights_only_refuses_is_reported_and_not_renamed(tmp_path):
    store = CheckpointStore(tmp_path)
    older = saved(store, 10)[0]
    refused = store.save(20, {**state(20.0), "extra": Unlisted()})
    with pytest.raises(CheckpointError, match="intact but torch.load\\(weights_only=True\\) refuses it"):
        store.load_newest(FP)
    assert [c.path for c in store.checkpoints()] == [older.path, refused]  # nothing renamed, no fallback
    assert not store.set_aside()


def test_an_io_error_while_loading_is_retryable_and_renames_nothing(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    files = saved(store, 10, 20)

    def eio(*_a, **_k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(torch, "load", eio)
    with pytest.raises(CheckpointReadError, match="Input/output error.*kept as it is"):
        store.load_newest(FP)
    assert store.checkpoints() == files and not store.set_aside()


def test_incompatible_config_is_a_clear_error_and_deletes_nothing(tmp_path):
    store = CheckpointStore(tmp_path)
    files = saved(store, 10, 20)
    with pytest.raises(CheckpointError, match=r"incompatible config \(model: checkpoint has 'mlp', this run has 'conv'"):
        store.load_newest({"model": "conv", "data": "synthetic"})
    assert store.checkpoints() == files


def test_stale_temporaries_are_removed_but_checkpoints_are_not(tmp_path):
    store = CheckpointStore(tmp_path)
    (ckpt,) = saved(store, 3)
    stale = tmp_path / ".step_00000004.pt.tmp.12345"
    stale.write_bytes(b"half")
    store.remove_stale_temporaries()
    assert not stale.exists() and ckpt.path.exists()


def test_keep_last_must_be_positive(tmp_path):
    with pytest.raises(CheckpointError, match="keep_last"):
        CheckpointStore(tmp_path, keep_last=0)
