"""Metrics derived from means (``objective.derive``): the language model's val_ppl is exp of the mean validation loss."""

from __future__ import annotations

import math

import torch
from torch import nn

from ft import FaultToleranceConfig
from train.components import Components
from train.config.checks import StepSettings
from train.data import ShardedBatches
from train.fault_tolerance import FaultToleranceSession
from train.loop import Validator
from train.objective import with_derived
from workloads.classification.data import SyntheticClassification
from workloads.gpt.objective import NextToken


def test_val_ppl_is_exp_of_the_mean_loss_not_the_mean_of_exp(tmp_path):
    torch.manual_seed(0)
    module = nn.Linear(8, 3)
    # Batches of very different losses: mean(exp(loss)) and exp(mean(loss)) differ clearly.
    batches = [(torch.randn(4, 8) * scale, torch.randint(0, 3, (4,))) for scale in (0.1, 5.0, 20.0)]
    data = ShardedBatches(SyntheticClassification(16, 8, 3, seed=0), 4, seed=0)
    parts = Components(module, module, NextToken(nn.CrossEntropyLoss()), torch.optim.SGD(module.parameters(), lr=0.1),
                       None, data, batches)
    session = FaultToleranceSession(FaultToleranceConfig.from_mapping({"enabled": False}), tmp_path)
    values = Validator(parts, torch.device("cpu"), StepSettings(), session, every=1).evaluate()
    with torch.no_grad():
        losses = [float(nn.functional.cross_entropy(module(x), y)) for x, y in batches]
    mean = sum(losses) / len(losses)
    assert math.isclose(values["val_loss"], mean, rel_tol=1e-5)
    assert math.isclose(values["val_ppl"], math.exp(values["val_loss"]), rel_tol=1e-5)
    assert not math.isclose(values["val_ppl"], sum(map(math.exp, losses)) / len(losses), rel_tol=1e-2)


def test_an_objective_without_derive_logs_its_means_only_and_a_non_finite_loss_derives_nothing():
    assert with_derived(object(), {"loss": 2.0}, prefix="val_") == {"val_loss": 2.0}
    assert "ppl" not in with_derived(NextToken(nn.CrossEntropyLoss()), {"loss": math.nan})
