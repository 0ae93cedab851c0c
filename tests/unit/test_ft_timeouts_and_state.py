"""Heartbeat timeouts: validity, the merge rule, and the state dict (round trip and garbage)."""

from __future__ import annotations

import json

import pytest

from ft import HeartbeatTimeouts, RankMonitorClientError, RankMonitorStateError
from ft.shared.timeouts import from_state_dict, merge_calculated, to_state_dict

FLOOR = 1.0


def test_are_valid_needs_both_timeouts_finite_and_positive():
    assert HeartbeatTimeouts(10.0, 5.0).are_valid
    assert not HeartbeatTimeouts(None, 5.0).are_valid
    assert not HeartbeatTimeouts(10.0, None).are_valid
    assert not HeartbeatTimeouts(float("inf"), 5.0).are_valid
    assert not HeartbeatTimeouts().were_calculated


def test_merge_multiplies_by_the_safety_factor_and_applies_the_floor():
    merged = merge_calculated(None, initial_interval=4.0, max_gap=2.0, safety_factor=5.0, floor=FLOOR)
    assert (merged.initial, merged.subsequent, merged.were_calculated) == (20.0, 10.0, True)
    tiny = merge_calculated(None, initial_interval=0.001, max_gap=0.01, safety_factor=5.0, floor=FLOOR)
    assert (tiny.initial, tiny.subsequent) == (FLOOR, FLOOR)


def test_merge_never_lowers_a_calculated_timeout_but_ignores_configured_ones():
    previous = HeartbeatTimeouts(100.0, 3.0, were_calculated=True)
    merged = merge_calculated(previous, initial_interval=4.0, max_gap=2.0, safety_factor=5.0, floor=FLOOR)
    assert (merged.initial, merged.subsequent) == (100.0, 10.0)
    configured = HeartbeatTimeouts(3600.0, 2700.0, were_calculated=False)
    merged = merge_calculated(configured, initial_interval=4.0, max_gap=2.0, safety_factor=5.0, floor=FLOOR)
    assert (merged.initial, merged.subsequent) == (20.0, 10.0)


def test_state_dict_round_trips_through_json():
    timeouts = HeartbeatTimeouts(12.5, 7.0, were_calculated=True)
    state = json.loads(json.dumps(to_state_dict(timeouts)))
    assert state["version"] == 2
    assert from_state_dict(state) == timeouts
    assert from_state_dict(to_state_dict(None)) is None


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (None, "must be a dict"),
        ([1, 2], "must be a dict"),
        ({"version": 1, "calculated": None}, "not a heartbeat-timeouts state dict"),
        ({"format": "pulsetrain.ft.heartbeat_timeouts", "version": 99, "calculated": None}, "version 99"),
        ({"format": "pulsetrain.ft.heartbeat_timeouts", "version": 1, "calculated": None, "x": 1}, "unknown keys"),
        ({"format": "pulsetrain.ft.heartbeat_timeouts", "version": 2, "calculated": None, "sections": {"step": 0}},
         "sections.step"),
        ({"format": "pulsetrain.ft.heartbeat_timeouts", "version": 1, "calculated": {"initial": 1}}, "exactly"),
        (
            {"format": "pulsetrain.ft.heartbeat_timeouts", "version": 1, "calculated": {"initial": -1, "subsequent": 2}},
            "calculated.initial",
        ),
        (
            {"format": "pulsetrain.ft.heartbeat_timeouts", "version": 1, "calculated": {"initial": 1, "subsequent": "x"}},
            "calculated.subsequent",
        ),
    ],
)
def test_garbage_state_is_rejected_with_a_clear_error(state, words):
    with pytest.raises(RankMonitorStateError, match=words) as info:
        from_state_dict(state)
    # Callers may catch either our client error or ValueError.
    assert isinstance(info.value, RankMonitorClientError)
    assert isinstance(info.value, ValueError)
