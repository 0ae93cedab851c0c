"""RNG states touch only the rank's own device: a CPU run makes no CUDA call, a CUDA rank only its GPU."""

from __future__ import annotations

import logging

import pytest
import torch

from train.checkpoint import rng

CUDA_CALLS = ("get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "is_available",
              "device_count", "init", "manual_seed_all")


@pytest.fixture
def no_cuda(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("a CUDA call on a CPU run")

    for name in CUDA_CALLS:
        monkeypatch.setattr(torch.cuda, name, refuse)


def test_a_cpu_run_makes_no_cuda_call_to_capture_or_restore(no_cuda):
    state = rng.capture(torch.device("cpu"))
    assert "cuda" not in state
    rng.restore({**state, "cuda": torch.zeros(4, dtype=torch.uint8)}, torch.device("cpu"))  # a GPU run's checkpoint
    rng.restore(state)  # no device at all (old callers)


def test_a_cuda_rank_saves_and_restores_its_own_device_only(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: calls.append(("get", device)) or torch.ones(2))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append(("set", device, state)))
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: pytest.fail("every GPU touched"))
    device = torch.device("cuda", 1)
    state = rng.capture(device)
    rng.restore(state, device)
    assert [c[:2] for c in calls] == [("get", device), ("set", device)]


def test_an_old_checkpoints_list_gives_this_ranks_local_gpu_its_entry_or_a_warning(monkeypatch, caplog):
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((int(state[0]), device)))
    base = rng.capture(torch.device("cpu"))
    old = {**base, "cuda": [torch.full((2,), 10, dtype=torch.uint8), torch.full((2,), 11, dtype=torch.uint8)]}
    rng.restore(old, torch.device("cuda", 1))
    assert restored == [(11, torch.device("cuda", 1))]
    with caplog.at_level(logging.WARNING):
        rng.restore(old, torch.device("cuda", 3))
    assert len(restored) == 1 and "none for cuda:3" in caplog.text
