"""Non-finite loss and gradients: the guard's stop and skip, the skipped update, and metrics that stay strict JSON."""

from __future__ import annotations

import math

import pytest
import torch
from ft_helpers.strict_json import strict_json
from torch import nn

from train.components import Components
from train.config.checks import StepSettings
from train.data import ShardedBatches
from train.distributed import DistributedContext
from train.errors import NonFiniteError
from train.loop import train_step
from train.metrics.sinks import JsonlSink
from train.nonfinite import NonFiniteGuard
from train.objective import Supervised
from workloads.classification.data import SyntheticClassification

CTX = DistributedContext(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), is_distributed=False)



def test_stop_reads_the_losses_only_when_a_log_is_due_and_names_the_first_bad_step():
    guard = NonFiniteGuard(CTX, "stop", log_every=5, max_steps=100)
    for step, value in ((1, 0.5), (2, 0.4), (3, math.nan), (4, math.inf)):
        guard.after_step(step, torch.tensor(value), None)  # not a log step: nothing read, nothing raised
    with pytest.raises(NonFiniteError, match=r"non-finite loss at step 3: nan \(rank 0\)"):
        guard.after_step(5, torch.tensor(0.3), None)


def test_a_host_side_gradient_norm_stops_at_once():
    guard = NonFiniteGuard(CTX, "stop", log_every=50, max_steps=100)
    with pytest.raises(NonFiniteError, match="non-finite gradient norm at step 7: inf"):
        guard.after_step(7, torch.tensor(1.0), math.inf)


def test_before_save_refuses_pending_bad_losses_and_non_finite_weights():
    guard = NonFiniteGuard(CTX, "stop", log_every=50, max_steps=100)
    module = nn.Linear(2, 2)
    guard.before_save(10, module)  # all finite: the save goes ahead
    guard.after_step(11, torch.tensor(math.nan), None)
    with pytest.raises(NonFiniteError, match="step 11"):
        guard.before_save(12, module)
    with torch.no_grad():
        module.weight[0, 0] = math.inf
    with pytest.raises(NonFiniteError, match="non-finite weights at step 13: its checkpoint is not written"):
        guard.before_save(13, module)


def test_skip_counts_consecutive_skips_and_stops_after_the_limit(caplog):
    guard = NonFiniteGuard(CTX, "skip", max_skips=2, log_every=1, max_steps=100)
    guard.after_step(1, torch.tensor(math.nan), math.nan)
    guard.after_step(2, torch.tensor(math.nan), math.nan)
    guard.after_step(3, torch.tensor(0.5), 1.0)  # a good step resets the count
    guard.after_step(4, torch.tensor(math.nan), math.nan)
    guard.after_step(5, torch.tensor(math.nan), math.nan)
    assert caplog.text.count("its update is skipped") == 4
    with pytest.raises(NonFiniteError, match="3 updates skipped in a row"):
        guard.after_step(6, torch.tensor(math.nan), math.nan)


class Poisoned(nn.Module):
    """A linear layer whose output is NaN on demand: the loss and every gradient become NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.poison = nn.Linear(8, 3), False

    def forward(self, x):
        out = self.linear(x)
        return out * math.nan if self.poison else out


def test_skip_drops_the_update_but_takes_the_schedule_step():
    module = Poisoned()
    optimizer = torch.optim.AdamW(module.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    data = ShardedBatches(SyntheticClassification(64, 8, 3, seed=0), 4, seed=0)
    parts = Components(module, module, Supervised(nn.CrossEntropyLoss()), optimizer, scheduler, data, [])
    settings = StepSettings(skip_nonfinite=True)
    train_step(parts, CTX.device, settings)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    moments = {k: v.clone() for k, v in optimizer.state_dict()["state"][0].items()}
    module.poison = True
    loss, norm = train_step(parts, CTX.device, settings)
    assert math.isnan(loss) and math.isnan(norm)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())  # no update
    assert all(torch.equal(moments[k], v) for k, v in optimizer.state_dict()["state"][0].items())
    assert scheduler.last_epoch == 2 and data.batch_index == 2  # the step is taken: position and schedule go on


def test_non_finite_metrics_are_written_as_null(tmp_path):
    sink = JsonlSink(tmp_path)
    sink.log({"loss": math.nan, "grad_norm": math.inf, "lr": 0.1}, 3)
    sink.close()
    record = strict_json((tmp_path / "metrics.jsonl").read_text())
    assert (record["loss"], record["grad_norm"], record["lr"]) == (None, None, 0.1)
