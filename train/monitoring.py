"""The loop's side of fault tolerance: heartbeats, the agreed stop, calibration and the saved timeouts.

With ``fault_tolerance.enabled: false`` every method is a cheap no-op: no client, no signal
handler, no stop agreement (SIGTERM then ends the process as under plain torchrun).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from ft import (
    FaultToleranceConfig,
    PreemptionGuard,
    RankMonitorClient,
    RankMonitorStateError,
    all_reduce_max,
    process_group_active,
    stop_signals_from_env,
    timeouts_from_state_dict,
    write_json_atomic,
)

log = logging.getLogger(__name__)

# Agree on a stop about this often (seconds); the first steps of an attempt check every step.
STOP_CHECK_INTERVAL_S = 0.2
_SKIPPED_CALLS, _TIMED_CALLS, _MAX_STOP_CHECK_EVERY = 5, 20, 100

# Written next to the checkpoints with every save, so a restarted rank can restore calibrated
# timeouts before init_workload_monitoring() without reading a whole checkpoint first.
STATE_FILE = "ft_state.json"


def _noop() -> None:
    pass


def _noop_section(_name: str) -> None:
    pass


class FaultToleranceSession:
    """One rank's RankMonitorClient and PreemptionGuard, driven by the training loop."""

    def __init__(self, config: FaultToleranceConfig, checkpoint_dir: Path,
                 measured_on: dict[str, Any] | None = None) -> None:
        self.config = config
        # What calibration here measures on (training_state.measured_on); saved timeouts from another
        # world size or config are dropped.
        self.measured_on = measured_on
        self.state_path = Path(checkpoint_dir) / STATE_FILE
        self.client: RankMonitorClient | None = RankMonitorClient() if config.enabled else None
        self.guard: PreemptionGuard | None = None
        self._calibrate_at: int | None = None  # a step, calibration_steps after a save
        self._save_checked = False
        self.stop_check_every: int | None = None
        self._timed_calls, self._timing_started = 0, 0.0
        # Bound once: the hot path is a single attribute call per step.
        self.heartbeat = self.client.send_heartbeat if self.client is not None else _noop
        self.start_section = self.client.start_section if self.client is not None else _noop_section
        self.end_section = self.client.end_section if self.client is not None else _noop_section
        self._validated = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Restore saved timeouts, then connect: a restarted attempt is protected from its first step."""
        if self.client is None:
            return
        saved = self._read_saved_state()
        if saved is not None:
            self.load_state_dict(saved, where=str(self.state_path))
        self.client.measured_on = self.measured_on
        self.client.init_workload_monitoring()
        if self.client.config is None:  # no monitor (plain python): calibrate with this run's settings
            self.client.config = self.config
        timeouts = self.client.hb_timeouts
        if saved is not None and timeouts.were_calculated:
            log.info("restored calculated heartbeat timeouts: initial %.1f s, per-step %.1f s",
                     timeouts.initial, timeouts.subsequent)

    def install_stop_handler(self) -> None:
        """Catch SIGTERM (and ``PULSETRAIN_STOP_SIGNALS``) as a request to stop at the next step boundary."""
        if self.client is not None:
            self.guard = PreemptionGuard(stop_signals_from_env()).install()

    def should_stop(self, step: int) -> bool:
        """Collective, called after every step on every rank: True on all ranks once any rank was signalled.

        The agreement (an all-reduce) runs every ``stop_check_every`` steps, chosen once per attempt
        so that it happens about every STOP_CHECK_INTERVAL_S: often enough that a stop follows a
        signal within a fraction of a second plus two steps, rarely enough to cost well under 1% of
        throughput on millisecond steps.
        """
        if self.guard is None:
            return False
        if self.stop_check_every is None:
            self._choose_stop_interval()
            if self.stop_check_every is None:
                return self.guard.should_stop()
        return step % self.stop_check_every == 0 and self.guard.should_stop()

    def _choose_stop_interval(self) -> None:
        if not process_group_active():
            self.stop_check_every = 1  # one process: the check is a flag read
            return
        self._timed_calls += 1
        if self._timed_calls == _SKIPPED_CALLS:
            self._timing_started = time.perf_counter()
        elif self._timed_calls == _SKIPPED_CALLS + _TIMED_CALLS:
            local = (time.perf_counter() - self._timing_started) / _TIMED_CALLS
            (step_s,) = all_reduce_max([local])  # every rank must choose the same interval
            self.stop_check_every = max(1, min(_MAX_STOP_CHECK_EVERY, int(STOP_CHECK_INTERVAL_S / step_s)))
            log.debug("stop agreement every %d steps (slowest rank's step %.2f ms)",
                      self.stop_check_every, step_s * 1e3)

    def close_stop_handler(self) -> None:
        """Finish the in-flight stop agreement and restore signal handlers (before leaving the process group)."""
        if self.guard is not None:
            self.guard.close()
            self.guard = None

    def shutdown(self) -> None:
        """Stop monitoring (call on every rank, after leaving the process group: rank_exit_timeout covers the rest)."""
        self.close_stop_handler()
        if self.client is not None:
            self.client.shutdown_workload_monitoring()

    def detection_summary(self) -> str:
        """One phrase for the start-up line: is hang detection on, and with which timeouts."""
        client = self.client
        if client is None:
            return "off (fault_tolerance.enabled=false)"
        if not client.is_monitored:
            return "off (not started by ft_launcher)"
        t = client.hb_timeouts
        if t.initial is None and t.subsequent is None:
            return "off until timeouts are calculated" if self.config.calibrate else "off (timeouts are null)"
        fmt = lambda v: "none" if v is None else f"{v:g} s"  # noqa: E731
        source = "calculated" if t.were_calculated else "config"
        return f"on (initial {fmt(t.initial)}, per-step {fmt(t.subsequent)}, {source})"

    # ------------------------------------------------------------------ calibration
    def note_checkpoint_saved(self, step: int, seconds: float) -> None:
        if self._calibrate_at is None:
            self._calibrate_at = step + self.config.calibration_steps
        if not self._save_checked and self.client is not None:
            self._save_checked = True  # the first save is the one measured before any calibration
            self._warn_if_save_is_close_to_its_timeout(seconds)

    def _warn_if_save_is_close_to_its_timeout(self, seconds: float) -> None:
        # No heartbeat is sent during a save, so the heartbeat timeout covers it as well as the section's.
        hb, sections = self.client.hb_timeouts, self.client.section_timeouts
        covering = [(t, name) for t, name in (
            (hb.subsequent, "the calculated per-step timeout" if hb.were_calculated else "rank_heartbeat_timeout"),
            (sections.section.get("checkpoint"), "rank_section_timeouts.checkpoint")) if t is not None]
        if covering:
            timeout, name = min(covering)
            if seconds > timeout / 2:
                log.warning("the first checkpoint save took %.1f s, more than half of %s (%g s) that covers it: "
                            "a slower save would be reported as a hang; raise it", seconds, name, timeout)

    def maybe_calibrate(self, step: int) -> None:
        """Calculate timeouts ``calibration_steps`` steps after every save (same step on all ranks).

        The first time sets them; later ones only raise a timeout when a longer interval was seen
        since (a slower save, a slower validation), and say so.
        """
        if (
            self.client is None
            or not self.config.calibrate
            or step != self._calibrate_at
        ):
            return
        self._calibrate_at = None
        self.client.measured_on = self.measured_on
        self.client.calculate_and_set_hb_timeouts()
        # Sections every rank has completed by now (validation runs on the same steps on every rank);
        # `init` keeps its configured timeout: a restart's init holds a checkpoint load a fresh run lacks.
        sections = ["step", "checkpoint", *(["validation"] if self._validated else [])]
        self.client.calculate_and_set_section_timeouts(selected_sections=sections, calc_out_of_section=False,
                                                       skip_if_not_ready=True)

    def note_validated(self) -> None:
        self._validated = True

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any] | None:
        return self.client.state_dict() if self.client is not None else None

    def load_state_dict(self, state: dict[str, Any] | None, where: str = "the checkpoint") -> None:
        """Restore calculated timeouts, unless they were measured on another world size or config."""
        if self.client is None or state is None:
            return
        saved_on = state.get("measured_on")
        if saved_on is not None and self.measured_on is not None and saved_on != self.measured_on:
            log.warning("dropping the calculated timeouts in %s: they were measured on world size %s, config %s; "
                        "this run is world size %s, config %s. Timeouts come from the config until recalibrated",
                        where, saved_on.get("world_size"), saved_on.get("config"),
                        self.measured_on.get("world_size"), self.measured_on.get("config"))
            return
        self.client.load_state_dict(state)

    def persist_state(self) -> None:
        """Rank 0, after each checkpoint save: keep the timeouts where the next attempt reads them first."""
        state = self.state_dict()
        if state is not None:
            write_json_atomic(self.state_path, state)

    def _read_saved_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s (%s); timeouts come from the config", self.state_path, exc)
            return None
        try:
            timeouts_from_state_dict(state)
        except RankMonitorStateError as exc:
            log.warning("ignoring %s: %s", self.state_path, exc)
            return None
        return state
