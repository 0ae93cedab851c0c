"""Stragglers: the window statistics, the streak rule, the settings, the watch's naming and its stop."""

from __future__ import annotations

import logging

import pytest
import torch

from ft import MetricEvent
from train.config.checks import check_training_config
from train.distributed import DistributedContext
from train.errors import StragglerError, TrainConfigError
from train.faults import FaultPlan
from train.straggler_stats import StragglerJudge, check_settings, ratios, window_median
from train.stragglers import StragglerWatch


def test_a_window_median_ignores_a_few_odd_steps():
    assert window_median([1.0] * 17 + [50.0] * 3) == 1.0
    assert window_median([]) == 0.0


def test_each_rank_is_compared_with_the_median_of_the_others():
    assert ratios([1.0, 1.5]) == [pytest.approx(1 / 1.5), 1.5]
    # One slow rank does not move the baseline the others are compared with.
    assert ratios([1.0, 1.0, 1.0, 3.0]) == [1.0, 1.0, 1.0, 3.0]
    assert ratios([2.0]) == [1.0]  # nobody to compare with
    assert ratios([0.0, 0.0]) == [1.0, 1.0]


def test_a_rank_is_named_after_the_configured_windows_in_a_row_once_per_streak():
    judge = StragglerJudge(factor=1.3, windows=3)
    slow = [1.0, 1.5]
    assert judge.judge(slow) == [] and judge.judge(slow) == []
    (named,) = judge.judge(slow)
    assert (named.rank, named.windows) == (1, 3)
    assert named.ratio == pytest.approx(1.5) and named.median_s == 1.5 and named.others_median_s == 1.0
    assert judge.judge(slow) == []  # still slow: not named again
    assert judge.judge([1.0, 1.0]) == []  # recovered: the streak ends
    assert [judge.judge(slow) for _ in range(3)][-1][0].rank == 1  # named again after a new streak


def test_an_interrupted_streak_or_a_ratio_below_the_factor_names_nobody():
    judge = StragglerJudge(factor=1.3, windows=3)
    for medians in ([1.0, 2.0], [1.0, 2.0], [1.0, 1.1], [1.0, 2.0], [1.0, 2.0], [1.0, 1.29], [1.0, 1.29]):
        assert judge.judge(medians) == []


@pytest.mark.parametrize(("args", "key"), [
    ((-1, 1.3, 3, "log"), "straggler_window_steps"), ((True, 1.3, 3, "log"), "straggler_window_steps"),
    ((20, 1.0, 3, "log"), "straggler_factor"), ((20, "2", 3, "log"), "straggler_factor"),
    ((20, 1.3, 0, "log"), "straggler_windows"), ((20, 1.3, 3, "warn"), "on_straggler"),
])
def test_bad_settings_name_their_key(args, key):
    with pytest.raises(TrainConfigError, match=f"trainer.{key}"):
        check_settings(*args)


def test_the_config_check_covers_the_straggler_keys():
    from omegaconf import OmegaConf

    from train.config.schema import CheckpointSchema, TrainerSchema

    cfg = OmegaConf.create({"trainer": OmegaConf.structured(TrainerSchema), "checkpoint": OmegaConf.structured(CheckpointSchema)})
    check_training_config(cfg)
    cfg.trainer.on_straggler = "panic"
    with pytest.raises(TrainConfigError, match="trainer.on_straggler"):
        check_training_config(cfg)


class Events:
    def __init__(self):
        self.rows = []

    def event(self, event, step, **fields):
        self.rows.append((event, step, fields))


def _watch(monkeypatch, world_size=2, medians=(1.0, 2.0), **kwargs):
    ctx = DistributedContext(0, 0, world_size, torch.device("cpu"), True)
    watch = StragglerWatch(ctx, Events(), **kwargs)
    monkeypatch.setattr(watch, "_gather", lambda mine: list(medians))
    return watch


def _steps(watch, first, last):
    for step in range(first, last + 1):
        watch.begin()
        watch.compute_done()
        watch.after_step(step)


def test_the_watch_names_a_slow_rank_in_the_log_and_the_metrics(monkeypatch, caplog):
    monkeypatch.setenv("RANK", "0")
    watch = _watch(monkeypatch, window_steps=5, factor=1.3, windows=2)
    with caplog.at_level(logging.WARNING, logger="train"):
        _steps(watch, 1, 9)
        assert watch.events.rows == []  # one full window so far
        _steps(watch, 10, 10)
    (event, step, fields), = watch.events.rows
    assert (event, step, fields["rank"], fields["ratio"], fields["windows"]) == (MetricEvent.STRAGGLER, 10, 1, 2.0, 2)
    assert "straggler: rank 1 is 2.00x slower" in caplog.text and "at step 10" in caplog.text
    assert "rank 0 is" not in caplog.text


def test_stop_raises_on_every_rank_after_the_same_step(monkeypatch):
    watch = _watch(monkeypatch, window_steps=2, factor=1.3, windows=1, action="stop")
    with pytest.raises(StragglerError, match=r"rank\(s\) 1 .* at step 2"):
        _steps(watch, 1, 2)


def test_off_with_one_rank_or_window_zero(monkeypatch):
    for watch in (_watch(monkeypatch, world_size=1), _watch(monkeypatch, window_steps=0)):
        _steps(watch, 1, 100)
        assert watch.samples == [] and watch.events.rows == []


def test_slow_factor_is_checked_and_busies_the_rank(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    with pytest.raises(TrainConfigError, match="fault.factor"):
        FaultPlan.from_config({"kind": "slow", "factor": 0.5})
    sleeps = []
    monkeypatch.setattr("train.faults.time.sleep", sleeps.append)
    plan = FaultPlan.from_config({"kind": "slow", "rank": 0, "step": 1, "seconds": 0, "factor": 3.0})
    clock = iter(float(t) for t in range(1000))  # every read of the clock is 1 s later: steps of 1 s
    monkeypatch.setattr("train.fault_kinds.time.perf_counter", lambda: next(clock))
    for step in range(1, 4):
        plan.before_step(rank=0, step=step)
    assert sleeps == [0.0] * 3
    assert next(clock) > 6  # it spun on the clock: (3 - 1) x the previous step's time, from the second step on
