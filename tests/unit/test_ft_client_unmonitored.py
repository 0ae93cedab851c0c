"""RankMonitorClient without a monitor (plain python / torchrun), and misuse errors."""

from __future__ import annotations

import logging
import time

import pytest

import ft.client.monitor_client
from ft import ENDPOINT_ENV, FaultToleranceConfig, RankMonitorClient, RankMonitorClientError


@pytest.fixture
def no_monitor(monkeypatch):
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    monkeypatch.setattr(ft.client.monitor_client, "_warned_unmonitored", False)


def test_without_a_monitor_it_warns_once_and_still_works(no_monitor, caplog):
    caplog.set_level(logging.WARNING, logger="ft")
    client = RankMonitorClient()
    client.init_workload_monitoring()
    assert client.is_monitored is False
    assert client.hb_timeouts.initial is None and not client.hb_timeouts.are_valid
    client.send_heartbeat()
    time.sleep(0.25)  # a measured gap, not synchronisation
    client.send_heartbeat()
    assert client.calculate_and_set_hb_timeouts() is True
    timeouts = client.hb_timeouts
    assert timeouts.were_calculated and timeouts.are_valid
    floor = FaultToleranceConfig().calculated_timeout_floor  # unmonitored: the schema's defaults apply
    assert timeouts.subsequent == timeouts.initial == floor  # 0.25 s x 5 is below the floor
    state = client.state_dict()
    client.shutdown_workload_monitoring()

    again = RankMonitorClient()
    again.load_state_dict(state)  # before init: kept and used for a later monitored run
    again.init_workload_monitoring()
    assert again.hb_timeouts == timeouts
    assert again.state_dict() == state
    again.shutdown_workload_monitoring()
    warnings = [r for r in caplog.records if ENDPOINT_ENV in r.getMessage()]
    assert len(warnings) == 1
    assert "hang detection is off" in warnings[0].getMessage()


def test_misuse_raises_our_error(no_monitor):
    client = RankMonitorClient()
    with pytest.raises(RankMonitorClientError, match="before init"):
        client.send_heartbeat()
    with pytest.raises(RankMonitorClientError, match="before init"):
        client.calculate_and_set_hb_timeouts()
    client.init_workload_monitoring()
    with pytest.raises(RankMonitorClientError, match="already called"):
        client.init_workload_monitoring()
    client.send_heartbeat()
    with pytest.raises(RankMonitorClientError, match="at least two heartbeats"):
        client.calculate_and_set_hb_timeouts()
    assert client.calculate_and_set_hb_timeouts(skip_if_not_ready=True) is False
    assert not client.hb_timeouts.were_calculated
    client.shutdown_workload_monitoring()
    with pytest.raises(RankMonitorClientError, match="after shutdown"):
        client.send_heartbeat()
    client.shutdown_workload_monitoring()  # twice is harmless


def test_an_unreachable_monitor_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(ENDPOINT_ENV, str(tmp_path / "gone.sock"))
    client = RankMonitorClient()
    with pytest.raises(RankMonitorClientError, match="cannot reach the rank monitor") as info:
        client.init_workload_monitoring()
    assert ENDPOINT_ENV in str(info.value)
    assert not client.is_monitored
