"""Fixtures of the integration tests: the uninterrupted reference run, and a bounded command runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from ft_helpers.launches import Launches
from ft_helpers.train_jobs import FAST_DETECTION, FT_LAUNCHER, launch, run_to_end


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference")
    code, out = launch(FT_LAUNCHER, run_dir, *FAST_DETECTION)
    assert code == 0, out[-4000:]
    return run_dir


@pytest.fixture
def run_command():
    """``run_command(argv, env_extra=None, timeout=60)`` -> (exit code, output): run from the repository
    root with a clean environment (no launcher variables inherited), killed with its children on timeout."""
    return run_to_end


@pytest.fixture
def launches(tmp_path):
    """Starts ft_launcher processes in ``tmp_path``; none of them, nor their workers, outlives the test."""
    runs = Launches(tmp_path)
    yield runs
    runs.cleanup()
