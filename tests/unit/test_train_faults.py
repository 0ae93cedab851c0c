"""Fault plans: validated config, and a fault fires only on its rank, step and attempt."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import CONF_DIR
from train.errors import TrainConfigError
from train.faults import KINDS, FaultPlan, InjectedFault


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "fault").glob("*.yaml")))
def test_every_fault_option_is_a_valid_plan(compose_config, name):
    plan = FaultPlan.from_config(compose_config(f"fault={name}").fault)
    assert plan.kind in KINDS and plan.attempt == 0
    assert plan.kind == name


def test_all_kinds_have_an_option():
    assert sorted(p.stem for p in (CONF_DIR / "fault").glob("*.yaml")) == sorted(KINDS)


@pytest.mark.parametrize("bad,key", [({"kind": "segfault"}, "fault.kind"), ({"step": -1}, "fault.step"),
                                     ({"rank": "one"}, "fault.rank"), ({"when": 3}, "unknown")])
def test_bad_values_name_the_key(bad, key):
    with pytest.raises(TrainConfigError, match=key):
        FaultPlan.from_config(bad)


def test_exception_fires_only_on_its_rank_step_and_attempt(monkeypatch):
    plan = FaultPlan(kind="exception", rank=1, step=5, attempt=1)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    plan.before_step(rank=1, step=5)  # wrong attempt
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    plan.before_step(rank=0, step=5)  # wrong rank
    plan.before_step(rank=1, step=4)  # wrong step
    with pytest.raises(InjectedFault, match="rank 1 at step 5"):
        plan.before_step(rank=1, step=5)


def test_sigterm_sends_sigterm_to_this_process(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        FaultPlan(kind="sigterm", rank=0, step=2).before_step(rank=0, step=2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]


def test_hang_in_checkpoint_is_armed_at_the_first_save_at_or_after_its_step(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    plan = FaultPlan(kind="hang_in_checkpoint", rank=0, step=15)
    assert not plan._armed("hang_in_checkpoint", 0, 10, at_or_after=True)
    assert plan._armed("hang_in_checkpoint", 0, 20, at_or_after=True)
    assert not plan._armed("hang", 0, 15)


def test_slow_pauses_every_step_from_its_step_on_its_rank_only(monkeypatch, caplog):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    pauses = []
    monkeypatch.setattr("train.faults.time.sleep", pauses.append)
    plan = FaultPlan.from_config({"kind": "slow", "rank": 1, "step": 3, "seconds": 0.25})
    for step in range(1, 7):
        plan.before_step(rank=0, step=step)
        plan.before_step(rank=1, step=step)
    assert pauses == [0.25] * 4  # steps 3, 4, 5, 6 of rank 1
    assert caplog.text.count("injected fault 'slow'") == 1


@pytest.mark.parametrize("seconds", [-1, "fast", True, 7200])
def test_slow_seconds_are_checked(seconds):
    with pytest.raises(TrainConfigError, match="fault.seconds"):
        FaultPlan.from_config({"kind": "slow", "seconds": seconds})
