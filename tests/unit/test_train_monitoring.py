"""FaultToleranceSession: no-ops when disabled, saved timeouts restored before init, agreed stop in one process."""

from __future__ import annotations

import json
import logging
import os
import signal
import time

from ft import FaultToleranceConfig
from train.fault_tolerance import STATE_FILE, FaultToleranceSession

CALCULATED = {"format": "pulsetrain.ft.heartbeat_timeouts", "version": 1,
              "calculated": {"initial": 12.0, "subsequent": 3.0}}


def test_disabled_session_does_nothing(tmp_path):
    session = FaultToleranceSession(FaultToleranceConfig(enabled=False), tmp_path)
    session.start()
    session.install_stop_handler()
    session.heartbeat()
    assert session.client is None and session.should_stop(1) is False and session.state_dict() is None
    session.persist_state()
    session.shutdown()
    assert not (tmp_path / STATE_FILE).exists()


def test_saved_timeouts_are_loaded_before_init(tmp_path, monkeypatch):
    monkeypatch.delenv("PULSETRAIN_FT_ENDPOINT", raising=False)
    (tmp_path / STATE_FILE).write_text(json.dumps(CALCULATED))
    session = FaultToleranceSession(FaultToleranceConfig(), tmp_path)
    session.start()
    try:
        timeouts = session.client.hb_timeouts
        assert timeouts.were_calculated and (timeouts.initial, timeouts.subsequent) == (12.0, 3.0)
        session.persist_state()
        assert json.loads((tmp_path / STATE_FILE).read_text())["calculated"] == CALCULATED["calculated"]
    finally:
        session.shutdown()


def test_unreadable_saved_state_is_ignored_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("PULSETRAIN_FT_ENDPOINT", raising=False)
    (tmp_path / STATE_FILE).write_text('{"format": "something else"}')
    session = FaultToleranceSession(FaultToleranceConfig(), tmp_path)
    with caplog.at_level(logging.WARNING):
        session.start()
    try:
        assert "ignoring" in caplog.text and not session.client.hb_timeouts.were_calculated
    finally:
        session.shutdown()


def test_sigterm_stops_at_the_next_check_in_one_process(tmp_path, monkeypatch):
    monkeypatch.delenv("PULSETRAIN_FT_ENDPOINT", raising=False)
    session = FaultToleranceSession(FaultToleranceConfig(), tmp_path)
    session.start()
    previous = signal.getsignal(signal.SIGTERM)
    session.install_stop_handler()
    try:
        assert session.should_stop(1) is False and session.stop_check_every == 1
        os.kill(os.getpid(), signal.SIGTERM)
        assert session.should_stop(2) is True
    finally:
        session.shutdown()
    assert signal.getsignal(signal.SIGTERM) == previous  # handler restored


def test_recalibration_raises_a_timeout_once_a_later_window_has_a_longer_gap(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("PULSETRAIN_FT_ENDPOINT", raising=False)
    config = FaultToleranceConfig(calibrate=True, calibration_steps=1, safety_factor=2.0, calculated_timeout_floor=0.1)
    session = FaultToleranceSession(config, tmp_path, measured_on={"world_size": 1, "config": "abc"})
    session.start()
    caplog.set_level(logging.INFO, logger="ft")
    try:
        for step, gap in ((1, 0.06), (3, 0.3)):  # measured gaps, not synchronisation
            session.heartbeat()
            time.sleep(gap)
            session.heartbeat()
            session.note_checkpoint_saved(step, 0.0)
            session.maybe_calibrate(step + 1)
            if step == 1:
                first = session.client.hb_timeouts.subsequent
        assert 0.12 <= first < 0.3 * 2
        assert session.client.hb_timeouts.subsequent >= 0.3 * 2 > first
        assert "recalculated heartbeat timeouts" in caplog.text and f"was {first:.1f} s" in caplog.text
        assert session.state_dict()["measured_on"] == {"world_size": 1, "config": "abc"}
    finally:
        session.shutdown()


def test_timeouts_measured_on_another_world_size_or_config_are_dropped_with_a_log_line(tmp_path, monkeypatch,
                                                                                       caplog):
    monkeypatch.delenv("PULSETRAIN_FT_ENDPOINT", raising=False)
    saved = dict(CALCULATED, version=2, measured_on={"world_size": 2, "config": "abc"})
    (tmp_path / STATE_FILE).write_text(json.dumps(saved))
    same = FaultToleranceSession(FaultToleranceConfig(), tmp_path, measured_on={"world_size": 2, "config": "abc"})
    same.start()
    assert same.client.hb_timeouts.were_calculated
    same.shutdown()
    other = FaultToleranceSession(FaultToleranceConfig(), tmp_path, measured_on={"world_size": 4, "config": "abc"})
    with caplog.at_level(logging.WARNING):
        other.start()
    try:
        assert not other.client.hb_timeouts.were_calculated
        assert "dropping the calculated timeouts" in caplog.text and "world size 2" in caplog.text
        assert "this run is world size 4" in caplog.text
    finally:
        other.shutdown()


def test_a_first_save_longer_than_half_its_timeout_is_warned_once_with_both_numbers(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("PULSETRAIN_FT_ENDPOINT", raising=False)
    config = FaultToleranceConfig(rank_heartbeat_timeout=60.0, rank_section_timeouts={"checkpoint": 30.0})
    session = FaultToleranceSession(config, tmp_path)
    session.start()
    try:
        with caplog.at_level(logging.WARNING):
            session.note_checkpoint_saved(10, 17.5)
            session.note_checkpoint_saved(20, 29.0)  # only the first save is judged
        warnings = [r.getMessage() for r in caplog.records if "checkpoint save took" in r.getMessage()]
        assert len(warnings) == 1
        assert "17.5 s" in warnings[0] and "rank_section_timeouts.checkpoint (30 s)" in warnings[0]
    finally:
        session.shutdown()
