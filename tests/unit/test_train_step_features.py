"""The loop's switches one by one: gradient accumulation with no_sync, clipping, bf16 autocast, warmup + cosine."""

from __future__ import annotations

import contextlib

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from train.components import Components
from train.data import ShardedBatches
from train.loop import StepSettings, train_step
from train.objective import Supervised
from train.schedules import WarmupCosine, warmup_cosine
from workloads.classification.data import SyntheticClassification


class CountingDDP(nn.Module):
    """Stands in for DistributedDataParallel: counts how often gradient sync was skipped."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module, self.skipped = module, 0

    @contextlib.contextmanager
    def no_sync(self):
        self.skipped += 1
        yield

    def forward(self, x):
        return self.module(x)


class DtypeProbe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 3)
        self.seen: list[torch.dtype] = []

    def forward(self, x):
        out = self.linear(x)
        self.seen.append(out.dtype)
        return out


def parts(model: nn.Module, module: nn.Module, lr: float = 0.1, batch_size: int = 4) -> Components:
    data = ShardedBatches(SyntheticClassification(64, 8, 3, seed=0), batch_size, seed=0)
    return Components(model, module, Supervised(nn.CrossEntropyLoss()), torch.optim.SGD(module.parameters(), lr=lr), None, data, [])


def test_grad_accum_takes_that_many_batches_and_skips_sync_on_all_but_the_last():
    module = nn.Linear(8, 3)
    ddp = CountingDDP(module)
    p = parts(ddp, module)
    train_step(p, torch.device("cpu"), StepSettings(grad_accum=3))
    assert (p.train_batches.batch_index, ddp.skipped) == (3, 2)


def test_grad_accum_of_two_halves_equals_one_double_batch():
    torch.manual_seed(0)
    a, b = nn.Linear(8, 3), nn.Linear(8, 3)
    b.load_state_dict(a.state_dict())
    big, small = parts(a, a, batch_size=8), parts(b, b, batch_size=4)
    small.train_batches = ShardedBatches(_Halves(big.train_batches), 4, seed=0)
    train_step(big, torch.device("cpu"), StepSettings())
    train_step(small, torch.device("cpu"), StepSettings(grad_accum=2))
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


class _Halves(torch.utils.data.Dataset):
    """The first batch of ``batches`` split in two, in order (so both runs see the same 8 samples)."""

    def __init__(self, batches: ShardedBatches) -> None:
        self.inputs, self.targets = batches.peek()

    def __len__(self):
        return len(self.inputs)

    def batch(self, indices):
        indices = torch.sort(indices).values  # same samples, in the order of the big batch
        return self.inputs[indices], self.targets[indices]


def test_clip_grad_norm_bounds_the_update_and_reports_the_norm_before_clipping():
    module = nn.Linear(8, 3)
    before = [q.detach().clone() for q in module.parameters()]
    p = parts(module, module, lr=1.0)
    _, norm = train_step(p, torch.device("cpu"), StepSettings(clip_grad_norm=1e-3))
    moved = torch.sqrt(sum(((q - b) ** 2).sum() for q, b in zip(module.parameters(), before, strict=True)))
    assert norm > 1e-3 and moved <= 1e-3 * (1 + 1e-4)


def test_bf16_autocasts_the_forward_on_cpu():
    module = DtypeProbe()
    p = parts(module, module)
    loss, _ = train_step(p, torch.device("cpu"), StepSettings(precision="bf16"))
    assert module.seen == [torch.bfloat16] and loss.dtype == torch.float32
    train_step(p, torch.device("cpu"), StepSettings(precision="32"))
    assert module.seen[-1] == torch.float32


def test_step_settings_from_config_accept_what_yaml_gives():
    got = StepSettings.from_config(OmegaConf.create({"grad_accum": 2, "clip_grad_norm": 1, "precision": 32}))
    assert got == StepSettings(2, 1.0, "32")


def test_warmup_then_cosine_to_the_floor():
    f = WarmupCosine(warmup_steps=4, total_steps=14, min_ratio=0.1)
    assert [round(f(s), 3) for s in range(4)] == [0.2, 0.4, 0.6, 0.8]
    assert f(4) == pytest.approx(1.0) and f(9) == pytest.approx(0.55) and f(14) == pytest.approx(0.1)
    assert f(100) == pytest.approx(0.1)


def test_warmup_cosine_state_survives_a_weights_only_checkpoint(tmp_path):
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    sched = warmup_cosine(opt, 3, 10)
    for _ in range(5):
        opt.step()
        sched.step()
    torch.save(sched.state_dict(), tmp_path / "s.pt")
    opt2 = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    sched2 = warmup_cosine(opt2, 3, 10)
    sched2.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    opt2.step()
    sched2.step()
    opt.step()
    sched.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
