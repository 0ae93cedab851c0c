"""What a resume keeps from the checkpoint and takes from a changed config (train.checkpoint.settings)."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from train.checkpoint.settings import TrainingSettings
from train.errors import CheckpointError


def config(lr: float = 0.01, max_steps: int = 10, target: str = "torch.optim.AdamW"):
    return OmegaConf.create({"trainer": {"max_steps": max_steps}, "optim": {
        "optimizer": {"_target_": target, "_partial_": True, "lr": lr},
        "scheduler": {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "_partial_": True,
                      "T_max": "${trainer.max_steps}"}}})


def trained(cfg, steps: int):
    """A model, AdamW and cosine as the loop builds them from ``cfg``, ``steps`` steps on."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.optimizer.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.trainer.max_steps)
    settings = TrainingSettings(cfg, optimizer, scheduler)
    for _ in range(steps):
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler, settings


def resumed(saved_cfg, new_cfg, steps: int):
    _, optimizer, scheduler, settings = trained(saved_cfg, steps)
    _, new_opt, new_sched, new_settings = trained(new_cfg, 0)
    new_opt.load_state_dict(optimizer.state_dict())
    new_sched.load_state_dict(scheduler.state_dict())
    new_settings.load_state_dict(settings.state_dict())
    return new_opt, new_sched, new_settings


def test_unchanged_settings_leave_the_restored_state_untouched(caplog):
    _, optimizer, scheduler, _ = trained(config(), 6)
    new_opt, new_sched, settings = resumed(config(), config(), 6)
    assert new_opt.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    assert new_sched.state_dict() == scheduler.state_dict()
    with caplog.at_level(logging.INFO, logger="train"):
        settings.report(6)
    assert "are the same" in caplog.text


def test_a_new_lr_and_horizon_give_the_lr_of_a_run_configured_so_from_the_start(caplog):
    new_opt, new_sched, settings = resumed(config(lr=0.01, max_steps=10), config(lr=0.1, max_steps=20), 10)
    _, reference, reference_sched, _ = trained(config(lr=0.1, max_steps=20), 10)
    assert new_opt.param_groups[0]["lr"] == reference.param_groups[0]["lr"]  # bitwise: the same replayed schedule
    assert new_sched.last_epoch == 10 and new_opt.param_groups[0]["initial_lr"] == 0.1
    assert torch.equal(new_opt.state_dict()["state"][0]["exp_avg"],  # the moments are the checkpoint's
                       trained(config(lr=0.01, max_steps=10), 10)[1].state_dict()["state"][0]["exp_avg"])
    with caplog.at_level(logging.INFO, logger="train"):
        settings.report(10)
    assert "optim.optimizer.lr 0.01 -> 0.1, optim.scheduler.T_max 10 -> 20, trainer.max_steps 10 -> 20" in caplog.text


def test_another_optimizer_class_is_refused_with_both_names():
    with pytest.raises(CheckpointError, match="trained with torch.optim.AdamW, this run has torch.optim.SGD"):
        resumed(config(), config(target="torch.optim.SGD"), 3)
