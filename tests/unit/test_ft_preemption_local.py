"""PreemptionGuard without a process group: the local flag, stickiness, and handler restore."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from ft import PreemptionGuard


def test_without_a_process_group_should_stop_is_the_local_flag():
    previous = signal.getsignal(signal.SIGUSR1)
    guard = PreemptionGuard(signals=(signal.SIGUSR1,))
    with guard:
        assert signal.getsignal(signal.SIGUSR1) != previous
        assert guard.should_stop() is False
        os.kill(os.getpid(), signal.SIGUSR1)  # the handler only sets the flag
        assert guard.requested and guard.received == signal.SIGUSR1
        assert guard.should_stop() is True
        assert guard.should_stop() is True  # stays agreed
    assert signal.getsignal(signal.SIGUSR1) == previous


def test_install_outside_the_main_thread_is_refused():
    errors = []

    def install():
        try:
            PreemptionGuard().install()
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=install)
    thread.start()
    thread.join(10)
    assert errors and "main thread" in errors[0]


def test_close_without_install_is_harmless():
    guard = PreemptionGuard()
    guard.close()
    with pytest.raises(AssertionError):
        assert guard.requested
