"""The monitor's view of an attempt's progress (first heartbeat, last completed checkpoint) and the time-lost rule built on it."""

from __future__ import annotations

import time

from ft import ENDPOINT_ENV, FaultToleranceConfig, RankMonitor, RankMonitorClient, Section
from ft.monitor.progress import AttemptProgress, ProgressWatch
from ft.shared.heartbeat_slots import SlotReading
from launcher.job.record import JobRecord

NAMES = {0: "step", 1: "checkpoint"}
S = 1_000_000_000


def reading(beat_s: float, open_mask: int = 0, out_since_s: float = 0.0, checkpoint_start_s: float = 0.0):
    return SlotReading(1 if beat_s else 0, int(beat_s * S), open_mask, int(out_since_s * S),
                       [0, int(checkpoint_start_s * S)] + [0] * 25)


def test_a_checkpoint_counts_once_it_closed_on_every_rank_even_between_two_reads():
    watch = ProgressWatch()
    watch.see(0, NAMES, reading(1.0), 1 * S)
    watch.see(1, NAMES, reading(2.0), 2 * S)
    assert watch.progress() == AttemptProgress(first_heartbeat=2.0, last_checkpoint=None)
    watch.see(0, NAMES, reading(5.0, open_mask=0b10, checkpoint_start_s=4.0), 5 * S)  # still saving
    watch.see(1, NAMES, reading(5.0, out_since_s=4.5, checkpoint_start_s=4.0), 5 * S)  # opened and closed since
    assert watch.progress().last_checkpoint is None  # rank 0 has not finished it
    watch.see(0, NAMES, reading(6.0, open_mask=0b01, checkpoint_start_s=4.0), 6 * S)  # closed, a step is open
    assert watch.progress() == AttemptProgress(first_heartbeat=2.0, last_checkpoint=4.5)  # the earlier of the two ends (6.0, 4.5)
    watch.see(1, NAMES, reading(9.0, open_mask=0b10, checkpoint_start_s=8.0), 9 * S)  # the next one, unfinished
    assert watch.progress().last_checkpoint == 4.5
    watch.clear()
    assert watch.progress() == AttemptProgress(None, None)


def test_a_rank_that_never_saved_keeps_the_attempt_without_a_checkpoint():
    watch = ProgressWatch()
    watch.see(0, NAMES, reading(1.0, out_since_s=3.0, checkpoint_start_s=2.0), 3 * S)
    watch.see(1, {0: "step"}, reading(1.0), 3 * S)  # never announced a checkpoint section
    watch.see(2, NAMES, None, 3 * S)  # caught mid-write: registered, nothing else
    assert watch.progress() == AttemptProgress(first_heartbeat=None, last_checkpoint=None)


def test_the_monitor_reports_a_real_clients_checkpoint_section_and_forgets_it_at_reset(monkeypatch):
    monitor = RankMonitor(FaultToleranceConfig(workload_check_interval=0.05))
    monitor.start()
    try:
        monkeypatch.setenv(ENDPOINT_ENV, monitor.worker_env()[ENDPOINT_ENV])
        client = RankMonitorClient()
        client.init_workload_monitoring()
        client.send_heartbeat()
        client.start_section(Section.CHECKPOINT.value)
        client.end_section(Section.CHECKPOINT.value)
        ended = time.monotonic()
        deadline = time.monotonic() + 10
        while monitor.progress().last_checkpoint is None and time.monotonic() < deadline:
            time.sleep(0.02)  # polls the monitor's next check
        progress = monitor.progress()
        assert progress.first_heartbeat is not None and progress.first_heartbeat <= ended
        assert progress.last_checkpoint is not None and progress.last_checkpoint <= ended
        client.shutdown_workload_monitoring()
        monitor.reset()
        assert monitor.progress() == AttemptProgress(None, None)
    finally:
        monitor.stop()


def test_time_lost_runs_from_the_failed_attempts_last_checkpoint_to_the_next_first_heartbeat():
    record = JobRecord("job")
    crashed, last = record.begin(0, 2), record.begin(1, 2)
    crashed.started, crashed.checkpointed, crashed.ended = 0.0, 40.0, 50.0
    last.started, last.first_heartbeat = 51.0, 53.0
    assert record.time_lost() == 53.0 - 40.0


def test_time_lost_counts_an_attempt_that_failed_before_its_first_checkpoint_and_overlaps_once():
    record = JobRecord("job")
    first, second, third = record.begin(0, 2), record.begin(1, 2), record.begin(2, 2)
    first.started, first.checkpointed, first.ended = 0.0, 10.0, 20.0
    second.started, second.first_heartbeat, second.ended = 21.0, 23.0, 30.0  # no checkpoint: all of it is lost
    third.started, third.first_heartbeat = 31.0, 32.5
    assert record.time_lost() == 32.5 - 10.0


def test_an_attempt_that_saved_as_it_was_ended_loses_only_detection_and_restart():
    record = JobRecord("job")
    saved, last = record.begin(0, 2), record.begin(1, 4)
    saved.started, saved.checkpointed, saved.ended, saved.saved = 0.0, 99.0, 100.0, True
    last.started, last.first_heartbeat = 101.0, 102.0
    assert record.time_lost() == 2.0
