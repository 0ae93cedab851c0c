"""Fault plans: validated config, and a fault fires only on its rank, step and attempt."""

from __future__ import annotations

import signal

import pytest
from ft_helpers.paths import CONF_DIR

from train.errors import TrainConfigError
from train.faults import FAULT_KINDS, FaultKind, FaultPlan, InjectedFault, fault_kind


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "fault").glob("*.yaml")))
def test_every_fault_option_is_a_valid_plan(compose_config, name):
    plan = FaultPlan.from_config(compose_config(f"fault={name}").fault)
    assert plan.kind in FAULT_KINDS and plan.attempt == 0
    assert plan.kind == name


def test_all_kinds_have_an_option():
    assert sorted(p.stem for p in (CONF_DIR / "fault").glob("*.yaml")) == sorted(FAULT_KINDS)


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
    hangs = []
    monkeypatch.setattr("train.faults.hang_forever", lambda kind, step, where="": hangs.append(step))
    plan = FaultPlan(kind="hang_in_checkpoint", rank=0, step=15)
    plan.before_step(rank=0, step=15)  # not a step fault
    plan.in_checkpoint_save(rank=0, step=10)
    plan.in_checkpoint_save(rank=1, step=20)
    assert hangs == []
    plan.in_checkpoint_save(rank=0, step=20)
    assert hangs == [20]


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


def test_a_kind_registered_outside_the_module_is_found_by_its_import_path(tmp_path, monkeypatch):
    (tmp_path / "extra_faults.py").write_text(
        "from train.faults import FaultKind, fault_kind\n"
        "@fault_kind('tripwire')\n"
        "class Tripwire(FaultKind):\n"
        "    options = {'message': 'boom'}\n"
        "    def before_step(self, step):\n"
        "        raise RuntimeError(self.plan.options['message'])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        plan = FaultPlan.from_config({"kind": "extra_faults.Tripwire", "rank": 0, "step": 2, "message": "hi"})
        assert plan.kind == "tripwire" and plan.options == {"message": "hi"}
        plan.before_step(rank=0, step=1)
        with pytest.raises(RuntimeError, match="hi"):
            plan.before_step(rank=0, step=2)
        with pytest.raises(TrainConfigError, match="unknown key"):
            FaultPlan.from_config({"kind": "tripwire", "seconds": 1})
    finally:
        FAULT_KINDS.pop("tripwire", None)


def test_a_kind_name_cannot_be_taken_twice():
    with pytest.raises(ValueError, match="already registered"):
        fault_kind("hang")(type("OtherHang", (FaultKind,), {}))


def test_the_docs_table_lists_every_registered_kind():
    text = (CONF_DIR.parent / "docs" / "training.md").read_text()
    for name, cls in FAULT_KINDS.items():
        if name != "none":
            assert f"| `{name}` | {cls.what_happens} | {cls.who_recovers} |" in text, name
