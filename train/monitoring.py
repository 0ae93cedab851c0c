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

from ft import FaultToleranceConfig, PreemptionGuard, RankMonitorClient, RankMonitorStateError
from ft.distributed import all_reduce_max, process_group_active
from ft.preemption import stop_signals_from_env
from ft.timeouts import from_state_dict
from train.checkpointing import write_json_atomic

log = logging.getLogger(__name__)

# Agree on a stop about this often (seconds); the first steps of an attempt check every step.
STOP_CHECK_INTERVAL_S = 0.2
_SKIPPED_CALLS, _TIMED_CALLS, _MAX_STOP_CHECK_EVERY = 5, 20, 100

# Written next to the checkpoints with every save, so a restarted rank can restore calibrated
# timeouts before init_workload_monitoring() without reading a whole checkpoint first.
STATE_FILE = "ft_state.json"


def _noop() -> None:
    pass


class FaultToleranceSession:
    """One rank's RankMonitorClient and PreemptionGuard, driven by the training loop."""

    def __init__(self, config: FaultToleranceConfig, checkpoint_dir: Path) -> None:
        self.config = config
        self.state_path = Path(checkpoint_dir) / STATE_FILE
        self.client: RankMonitorClient | None = RankMonitorClient() if config.enabled else None
        self.guard: PreemptionGuard | None = None
        self._first_save_step: int | None = None
        self.stop_check_every: int | None = None
        self._timed_calls, self._timing_started = 0, 0.0
        # Bound once: the hot path is a single attribute call per step.
        self.heartbeat = self.client.send_heartbeat if self.client is not None else _noop

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Restore saved timeouts, then connect: a restarted attempt is protected from its first step."""
        if self.client is None:
            return
        saved = self._read_saved_state()
        if saved is not None:
            self.client.load_state_dict(saved)
        self.client.init_workload_monitoring()
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

    def shutdown(self) -> None:
        """Stop monitoring and restore signal handlers (call on every rank, after the last step)."""
        if self.guard is not None:
            self.guard.close()
            self.guard = None
        if self.client is not None:
            self.client.shutdown_workload_monitoring()

    # ------------------------------------------------------------------ calibration
    def note_checkpoint_saved(self, step: int) -> None:
        if self._first_save_step is None:
            self._first_save_step = step

    def maybe_calibrate(self, step: int) -> None:
        """Calculate timeouts ``calibration_steps`` steps after the first save (same step on all ranks)."""
        if (
            self.client is None
            or not self.config.calibrate
            or self._first_save_step is None
            or self.client.hb_timeouts.were_calculated
            or step != self._first_save_step + self.config.calibration_steps
        ):
            return
        self.client.calculate_and_set_hb_timeouts()

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any] | None:
        return self.client.state_dict() if self.client is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.client is not None and state is not None:
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
            from_state_dict(state)
        except RankMonitorStateError as exc:
            log.warning("ignoring %s: %s", self.state_path, exc)
            return None
        return state
