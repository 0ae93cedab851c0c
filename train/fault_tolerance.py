"""The loop's side of fault tolerance: sections and heartbeats, the agreed stop, calibration, one teardown.

With ``fault_tolerance.enabled: false`` every method is a cheap no-op: no client, no signal
handler, no stop agreement (SIGTERM then ends the process as under plain torchrun).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ft import (
    FaultToleranceConfig,
    PreemptionGuard,
    RankMonitorClient,
    Section,
    stop_signals_from_env,
)
from train import distributed, saved_timeouts
from train.saved_timeouts import STATE_FILE
from train.stop_interval import StopInterval

log = logging.getLogger(__name__)

def _noop() -> None:
    pass


def _noop_section(_name: str) -> None:
    pass


class _Section:
    """``with session.section(name):`` opens ``name`` and closes it when the block ends normally.

    A block that raises leaves it open: the rank is failing, and the monitor judges what follows.
    """

    __slots__ = ("_start", "_end", "_name", "_after")

    def __init__(self, start: Any, end: Any, name: str, after: Any = _noop) -> None:
        self._start, self._end, self._name, self._after = start, end, name, after

    def __enter__(self) -> None:
        self._start(self._name)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self._end(self._name)
            self._after()


class FaultToleranceSession:
    """One rank's RankMonitorClient and PreemptionGuard, driven by the training loop."""

    def __init__(self, config: FaultToleranceConfig, checkpoint_dir: Path,
                 measured_on: dict[str, Any] | None = None) -> None:
        self.config = config
        # What calibration here measures on (train.checkpoint.fingerprint.measured_on); saved timeouts from another
        # world size or config are dropped.
        self.measured_on = measured_on
        self.state_path = Path(checkpoint_dir) / STATE_FILE
        self.client: RankMonitorClient | None = RankMonitorClient() if config.enabled else None
        self.guard: PreemptionGuard | None = None
        self._calibrate_at: int | None = None  # a step, calibration_steps after a save
        self._save_checked = False
        self._stop_interval = StopInterval()
        # Bound once: the hot path is a single attribute call per step.
        self.heartbeat = self.client.send_heartbeat if self.client is not None else _noop
        self.start_section = self.client.start_section if self.client is not None else _noop_section
        self.end_section = self.client.end_section if self.client is not None else _noop_section
        self._validated = False
        # One object per attempt: entering it per step costs two bound calls, no allocation.
        self._step = _Section(self.start_section, self.end_section, Section.STEP.value, self.heartbeat)

    # ------------------------------------------------------------------ what the loop calls
    def step(self) -> _Section:
        """``with session.step():`` one training step inside the ``step`` section, a heartbeat after it."""
        return self._step

    def section(self, name: Section) -> _Section:
        """``with session.section(Section.CHECKPOINT):`` a phase with a timeout of its own."""
        return _Section(self.start_section, self.end_section, name.value)

    def after_step(self, step: int, max_steps: int) -> bool:
        """Collective, every rank after every step: calibrate when due; True when the ranks agreed to stop."""
        self.maybe_calibrate(step)
        return step < max_steps and self.should_stop(step)

    def close(self, ctx: distributed.DistributedContext, built: distributed.Releasable | None,
              finished: bool) -> None:
        """All teardown, for the finished and the failing path: stop handler, model and group, monitoring.

        A finished rank completes the in-flight stop agreement first (a collective: every rank is
        here) and leaves the group while heartbeat deadlines still cover it. A failing rank runs no
        collective (another rank may be gone). Either way ``distributed.teardown`` drops the built
        DDP model before the group goes; after monitoring stops, only ``rank_exit_timeout`` applies.
        """
        if finished:
            self.close_stop_handler()
        distributed.teardown(ctx, built)
        self.shutdown()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Restore saved timeouts, then connect: a restarted attempt is protected from its first step."""
        if self.client is None:
            return
        saved = saved_timeouts.read(self.state_path)
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

        The agreement (an all-reduce) runs every ``stop_check_every`` steps (:mod:`train.stop_interval`).
        """
        return self.guard is not None and self._stop_interval.check_now(step) and self.guard.should_stop()

    @property
    def stop_check_every(self) -> int | None:
        return self._stop_interval.every

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
            (sections.section.get(Section.CHECKPOINT.value), "rank_section_timeouts.checkpoint")) if t is not None]
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
        sections = [Section.STEP.value, Section.CHECKPOINT.value, *([Section.VALIDATION.value] if self._validated else [])]
        self.client.calculate_and_set_section_timeouts(selected_sections=sections, calc_out_of_section=False,
                                                       skip_if_not_ready=True)

    def note_validated(self) -> None:
        self._validated = True

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any] | None:
        return self.client.state_dict() if self.client is not None else None

    def load_state_dict(self, state: dict[str, Any] | None, where: str = "the checkpoint") -> None:
        """Restore calculated timeouts, unless they were measured on another world size or config."""
        if self.client is not None and state is not None:
            saved_timeouts.restore(self.client, state, self.measured_on, where)

    def persist_state(self) -> None:
        """Rank 0, after each checkpoint save: keep the timeouts where the next attempt reads them first."""
        saved_timeouts.write(self.state_path, self.state_dict())
