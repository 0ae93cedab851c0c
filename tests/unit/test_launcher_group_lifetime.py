"""launcher.workers.group_lifetime: a forked worker's destroy_process_group keeps what it destroys, once wrapped."""

from __future__ import annotations

import types

import pytest
import torch.distributed as dist
from torch.distributed import distributed_c10d as c10d

from launcher.workers import group_lifetime


@pytest.fixture
def fake_destroy(monkeypatch):
    calls = []

    def destroy_process_group(group=None):
        calls.append(group)

    monkeypatch.setattr(c10d, "destroy_process_group", destroy_process_group)
    monkeypatch.setattr(dist, "destroy_process_group", destroy_process_group)
    monkeypatch.setattr(group_lifetime, "_kept", [])
    return calls


def test_destroy_keeps_every_group_then_does_what_torch_does(fake_destroy, monkeypatch):
    world, sub = object(), object()
    monkeypatch.setattr(c10d, "_world", types.SimpleNamespace(pg_map={world: None, sub: None}, default_pg=world))
    group_lifetime.keep_groups_until_exit()
    dist.destroy_process_group()
    assert fake_destroy == [None]
    assert group_lifetime._kept == [world, sub]


def test_destroying_one_group_keeps_that_group(fake_destroy):
    sub = object()
    group_lifetime.keep_groups_until_exit()
    c10d.destroy_process_group(sub)
    assert fake_destroy == [sub]
    assert group_lifetime._kept == [sub]


def test_without_the_private_map_the_default_group_is_kept(fake_destroy, monkeypatch):
    world = object()
    monkeypatch.setattr(c10d, "_world", types.SimpleNamespace(default_pg=world))  # a release without pg_map
    group_lifetime.keep_groups_until_exit()
    dist.destroy_process_group()
    assert group_lifetime._kept == [world]


def test_wrapping_twice_wraps_once(fake_destroy):
    group_lifetime.keep_groups_until_exit()
    wrapped = dist.destroy_process_group
    group_lifetime.keep_groups_until_exit()
    assert dist.destroy_process_group is wrapped is c10d.destroy_process_group
    dist.destroy_process_group(group := object())
    assert group_lifetime._kept == [group] and fake_destroy == [group]
