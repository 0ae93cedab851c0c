"""PreemptionGuard: a signal seen by any rank stops every rank after the same step.

Signal handlers only set a flag (no collective may run inside a handler). ``should_stop()`` is
called by every rank once per step at the same point: it returns the result of the all-reduce
(MAX) started at the previous call and starts the next one, so the collective's latency overlaps
the step instead of adding to it. A signal therefore stops all ranks within two calls.

Which signals: SIGTERM, plus those named in ``PULSETRAIN_STOP_SIGNALS`` (``ft_launcher`` sets it from
``--stop-signal``/``--signals-to-handle``), since a scheduler such as SLURM may deliver the launcher's
stop signal, e.g. SIGUSR1, to every process of the job, ranks included.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterable
from types import FrameType
from typing import Any

from ft.client.collectives import collective_device, process_group_active
from ft.shared.contracts import STOP_SIGNALS_ENV

log = logging.getLogger("ft.preemption")


# Signals that cannot mean "stop cleanly": uncatchable, job control and children, synchronous faults,
# and SIGUSR2, on which ranks dump their Python stacks for the monitor.
_NOT_STOP_SIGNALS = ("SIGKILL", "SIGSTOP", "SIGCONT", "SIGCHLD", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGSEGV",
                     "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGTRAP", "SIGSYS", "SIGPIPE", "SIGWINCH",
                     "SIGURG", "SIGUSR2")


def parse_stop_signal(text: str) -> signal.Signals:
    """``SIGUSR1``, ``USR1``, ``usr1`` or ``10`` -> ``signal.SIGUSR1``; ValueError naming what is wrong."""
    name = str(text).strip()
    try:
        sig = signal.Signals(int(name)) if name.isdigit() else signal.Signals[
            name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper()]
    except (KeyError, ValueError):
        raise ValueError(f"{text!r} is not a signal name or number (e.g. SIGUSR1)") from None
    if sig.name in _NOT_STOP_SIGNALS:
        why = ("ranks dump their stacks on it" if sig == signal.SIGUSR2
               else "it cannot be caught or does not mean stop")
        raise ValueError(f"{sig.name} cannot be a stop signal: {why}")
    return sig


def stop_signals_from_env(environ: dict[str, str] | None = None) -> tuple[signal.Signals, ...]:
    """SIGTERM plus the signals named in ``PULSETRAIN_STOP_SIGNALS`` (unusable names warned about, skipped)."""
    text = (os.environ if environ is None else environ).get(STOP_SIGNALS_ENV, "")
    found = [signal.SIGTERM]
    for name in filter(None, (part.strip() for part in text.split(","))):
        try:
            sig = parse_stop_signal(name)
        except ValueError as exc:
            log.warning("%s: %s; ignored", STOP_SIGNALS_ENV, exc)
            continue
        if sig not in found:
            found.append(sig)
    return tuple(found)


class PreemptionGuard:
    """Turns SIGTERM (by default) into an agreed stop at a step boundary."""

    def __init__(self, signals: Iterable[signal.Signals] = (signal.SIGTERM,)) -> None:
        self.signals = tuple(signals)
        self.requested = False  # set by a handler on this rank only
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._pending: tuple[Any, Any] | None = None  # (work handle, tensor) of the in-flight all-reduce
        self._agreed = False

    def install(self) -> PreemptionGuard:
        """Install the flag-setting handlers (main thread only); ``close()`` restores the previous ones."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("PreemptionGuard.install() must be called from the main thread (Python signal rule)")
        for signum in self.signals:
            if signum not in self._previous:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.received = signal.Signals(signum)

    def should_stop(self) -> bool:
        """Collective: the same answer on every rank at the same call; True once any rank was signalled."""
        if self._agreed:
            return True
        if not process_group_active():
            self._agreed = self.requested
            return self._agreed
        result = self._collect()
        if result:
            self._agreed = True  # every rank sees the same result, so none starts another all-reduce
            here = self.received.name if self.received is not None else "no signal"
            log.info("stop requested on some rank (%s here): all ranks stop at this step", here)
            return True
        self._start()
        return False

    def _start(self) -> None:
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([1.0 if self.requested else 0.0], device=collective_device())
        self._pending = (dist.all_reduce(tensor, op=dist.ReduceOp.MAX, async_op=True), tensor)

    def _collect(self) -> bool:
        if self._pending is None:
            return False
        work, tensor = self._pending
        self._pending = None
        work.wait()
        return bool(tensor.item() > 0)

    def close(self) -> None:
        """Finish an in-flight all-reduce (keeps ranks matched) and restore the previous handlers."""
        if self._pending is not None and process_group_active():
            self._collect()
        self._pending = None
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def __enter__(self) -> PreemptionGuard:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.close()
