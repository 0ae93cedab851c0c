"""The uninterrupted run that recovery and stop tests compare their final weights with (once per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ft_helpers.train_jobs import FAST_DETECTION, FT_LAUNCHER, launch  # noqa: E402


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference")
    code, out = launch(FT_LAUNCHER, run_dir, *FAST_DETECTION)
    assert code == 0, out[-4000:]
    return run_dir
