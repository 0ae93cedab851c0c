"""--stop-signal and torchrun's --signals-to-handle: which signals stop the workers cleanly."""

from __future__ import annotations

import signal

import pytest

from ft.client.preemption import parse_stop_signal, stop_signals_from_env
from ft.shared.contracts import STOP_SIGNALS_ENV
from launcher.cli import stop_signals
from launcher.cli.args import UsageError, launcher_flags, parse

DEFAULT = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def test_default_is_torchruns_list():
    assert parse(["train.py"]).stop_signals == DEFAULT


@pytest.mark.parametrize("spelling", ["--stop-signal=SIGUSR1", "--stop_signal=USR1", "--stop-signal=usr1",
                                      f"--stop-signal={int(signal.SIGUSR1)}"])
def test_stop_signal_adds_to_the_default(spelling):
    assert parse([spelling, "train.py"]).stop_signals == (*DEFAULT, signal.SIGUSR1)


def test_signals_to_handle_replaces_the_list_as_in_torchrun():
    args = parse(["--signals-to-handle=SIGINT,SIGUSR1", "--stop-signal", "SIGALRM", "train.py"])
    assert args.stop_signals == (signal.SIGINT, signal.SIGUSR1, signal.SIGALRM)
    assert parse(["--signals_to_handle=SIGTERM,SIGTERM", "train.py"]).stop_signals == (signal.SIGTERM,)


def test_environment_defaults_as_torchrun_reads_them(monkeypatch):
    monkeypatch.setenv("PET_STOP_SIGNAL", "SIGUSR1")
    assert parse(["train.py"]).stop_signals == (*DEFAULT, signal.SIGUSR1)


@pytest.mark.parametrize(("value", "message"), [
    ("SIGNOPE", "--stop-signal: 'SIGNOPE' is not a signal name or number"),
    ("SIGKILL", "--stop-signal: SIGKILL cannot be a stop signal"),
    ("SIGUSR2", "SIGUSR2 cannot be a stop signal: ranks dump their stacks on it"),
    ("SIGCHLD", "SIGCHLD cannot be a stop signal"),
])
def test_unusable_signals_are_refused_with_one_line(value, message):
    with pytest.raises(UsageError, match=message):
        parse([f"--stop-signal={value}", "train.py"])


def test_peek_before_parsing_agrees_and_falls_back_on_mistakes():
    argv = ["--nproc-per-node=2", "--stop-signal", "USR1", "train.py", "--stop-signal=SIGALRM"]
    assert stop_signals.peek(argv, launcher_flags) == (*DEFAULT, signal.SIGUSR1)  # script args are not ours
    assert stop_signals.peek(["--stop-signal=SIGNOPE", "train.py"], launcher_flags) == DEFAULT


def test_export_reaches_elastic_the_workers_and_the_fork_server(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_SIGNALS_TO_HANDLE", raising=False)
    monkeypatch.delenv(STOP_SIGNALS_ENV, raising=False)
    stop_signals.export((signal.SIGTERM, signal.SIGUSR1))
    assert stop_signals.handled() == (signal.SIGTERM, signal.SIGUSR1)
    import os

    assert os.environ[STOP_SIGNALS_ENV] == "SIGTERM,SIGUSR1"
    assert stop_signals_from_env() == (signal.SIGTERM, signal.SIGUSR1)


def test_ranks_always_stop_on_sigterm_and_skip_unusable_names(caplog):
    assert stop_signals_from_env({}) == (signal.SIGTERM,)
    got = stop_signals_from_env({STOP_SIGNALS_ENV: "SIGUSR1, SIGUSR2,bogus,SIGTERM"})
    assert got == (signal.SIGTERM, signal.SIGUSR1)
    assert "SIGUSR2" in caplog.text and "bogus" in caplog.text


def test_parse_stop_signal_names():
    assert parse_stop_signal("sigusr1") is signal.SIGUSR1
    assert parse_stop_signal(" ALRM ") is signal.SIGALRM
