"""Which signals to ft_launcher mean "stop the ranks cleanly": ``--signals-to-handle`` plus ``--stop-signal``.

torchrun's ``--signals-to-handle`` lists the signals the launcher catches (default
SIGTERM,SIGINT,SIGHUP,SIGQUIT); ``--stop-signal`` adds to that list (e.g. SIGUSR1, which a SLURM
``--signal=B:USR1@120`` delivers). Each of them makes the launcher forward SIGTERM to the workers,
which save and exit 75. The same list reaches the workers (``PULSETRAIN_STOP_SIGNALS``: the loop
treats each as a stop request) and the fork server (which ignores them): a scheduler may deliver the
signal to every process of the job step, not only to the launcher. Imports no torch.
"""

from __future__ import annotations

import logging
import os
import signal

from ft.client.preemption import parse_stop_signal
from ft.shared.contracts import STOP_SIGNALS_ENV

log = logging.getLogger("launcher")
DEFAULT_SIGNALS_TO_HANDLE = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"
_FLAGS = {"--signals-to-handle": "signals_to_handle", "--signals_to_handle": "signals_to_handle",
          "--stop-signal": "stop_signal", "--stop_signal": "stop_signal"}


class StopSignalError(ValueError):
    """A flag names something that cannot be a stop signal."""


def parse_list(text: str | None, flag: str) -> list[signal.Signals]:
    """``"SIGTERM,USR1"`` -> [SIGTERM, SIGUSR1]; StopSignalError naming the flag and the bad entry."""
    found: list[signal.Signals] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        try:
            sig = parse_stop_signal(part)
        except ValueError as exc:
            raise StopSignalError(f"{flag}: {exc}") from None
        if sig not in found:
            found.append(sig)
    return found


def resolve(signals_to_handle: str | None, stop_signal: str | None) -> tuple[signal.Signals, ...]:
    """The signals the launcher treats as a stop request (never empty: SIGINT at least, for Ctrl-C)."""
    handled = parse_list(signals_to_handle if signals_to_handle is not None else DEFAULT_SIGNALS_TO_HANDLE,
                         "--signals-to-handle")
    for sig in parse_list(stop_signal, "--stop-signal"):
        if sig not in handled:
            handled.append(sig)
    return tuple(handled) or (signal.SIGINT,)


def peek(argv: list[str], launcher_flags) -> tuple[signal.Signals, ...]:
    """The stop signals from the flags before the script, read before full parsing; defaults if unusable
    (the parser then reports the mistake)."""
    values = {"signals_to_handle": os.environ.get("PET_SIGNALS_TO_HANDLE"),
              "stop_signal": os.environ.get("PET_STOP_SIGNAL")}
    for flag, value in launcher_flags(argv):
        if flag in _FLAGS:
            values[_FLAGS[flag]] = value
    try:
        return resolve(values["signals_to_handle"], values["stop_signal"])
    except StopSignalError:
        return resolve(None, None)


def names(signals: tuple[signal.Signals, ...]) -> str:
    return ",".join(sig.name for sig in signals)


def export(signals: tuple[signal.Signals, ...]) -> None:
    """Tell elastic (it re-installs its handlers when workers start), the workers and the fork server."""
    os.environ["TORCHELASTIC_SIGNALS_TO_HANDLE"] = names(signals)
    os.environ[STOP_SIGNALS_ENV] = names(signals)


def handled() -> tuple[signal.Signals, ...]:
    """The signals exported for this launch (defaults before ``export``)."""
    return resolve(os.environ.get("TORCHELASTIC_SIGNALS_TO_HANDLE"), None)


def ignore_repeats() -> None:
    """After the workers stopped on request: further stop signals are logged, not raised."""
    def _repeat(signum: int, _frame: object) -> None:
        log.warning("%s again: already stopped", signal.Signals(signum).name)

    for sig in handled():
        signal.signal(sig, _repeat)
