"""Process lifetime helpers every part needs: die with the parent (Linux ``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent exits; False where it cannot (not Linux).

    Safe between fork and exec: it only calls ``prctl``, which takes no locks. A caller that must not
    outlive its parent checks ``os.getppid()`` afterwards: the parent may have died before the call.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return False
    return True
