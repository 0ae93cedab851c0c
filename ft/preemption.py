"""PreemptionGuard: a signal seen by any rank stops every rank after the same step.

Signal handlers only set a flag (no collective may run inside a handler). ``should_stop()`` is
called by every rank once per step at the same point: it returns the result of the all-reduce
(MAX) started at the previous call and starts the next one, so the collective's latency overlaps
the step instead of adding to it. A signal therefore stops all ranks within two calls.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from types import FrameType
from typing import Any

from ft.distributed import collective_device, process_group_active

log = logging.getLogger("ft.preemption")


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
