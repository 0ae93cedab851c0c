"""FaultToleranceSession: no-ops when disabled, saved timeouts restored before init, agreed stop in one process."""

from __future__ import annotations

import json
import logging
import os
import signal

from ft import FaultToleranceConfig
from train.monitoring import STATE_FILE, FaultToleranceSession

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
