"""Bad input: one clear line on stderr, exit 2, no traceback, no worker started."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "launcher_workers"))
from harness import HYDRA, PLAIN, Launches  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CASES = {
    "missing script": (["--standalone", "missing_script.py"], "script not found: missing_script.py"),
    "missing module": (["--standalone", "-m", "no_such_module_here"], "module not found"),
    "config not found": (["--standalone", HYDRA, "--config-path=/nonexistent/conf"], "config directory not found"),
    "missing config name": (["--standalone", HYDRA, "--config-name=nope"], "cannot compose"),
    "bad ft value": (["--standalone", "--ft-rank-heartbeat-timeout=-1", PLAIN], "must be > 0 seconds, got -1"),
    "bad ft text": (["--standalone", "--ft-rank-heartbeat-timeout=soon", PLAIN], "expected a number, got 'soon'"),
    "nproc 0": (["--standalone", "--nproc-per-node=0", PLAIN], "--nproc-per-node must be at least 1"),
    "unknown ft flag": (["--standalone", "--ft-rank-hearbeat-timeout=3", PLAIN],
                        "did you mean --ft-rank-heartbeat-timeout?"),
    "hydra typo": (["--standalone", HYDRA, "fault_tolerance.rank_hartbeat_timeout=3"], "rank_hartbeat_timeout"),
    "bad value in hydra override": (["--standalone", HYDRA, "fault_tolerance.rank_heartbeat_timeout=0"],
                                    "must be > 0 seconds"),
    "bad ft yaml": (["--standalone", "--ft-cfg-path=/nonexistent.yaml", PLAIN], "file not found"),
    "bad nnodes": (["--nnodes=3:1", PLAIN], "--nnodes"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    args, expected = CASES[case]
    out = tmp_path / "out"
    runs = Launches(tmp_path)
    try:
        code, err = runs.run([*args, f"out={out}"] if args[-1] == PLAIN else args, out, timeout=30)
    finally:
        runs.cleanup()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("ft_launcher: error:") and expected in lines[0], err
    assert "Traceback" not in err
    assert not out.exists(), "no worker may start"
