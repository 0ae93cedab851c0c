"""Bad input: one clear line on stderr, exit 2, no traceback, no worker started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from ft_helpers.launches import HYDRA, PLAIN, REPO, Launches, wait_for

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
    "ft yaml not utf-8": (["--standalone", "--ft-cfg-path=latin1.yaml", PLAIN], "latin1.yaml is not UTF-8 text"),
    "ft yaml is a directory": (["--standalone", "--ft-cfg-path=.", PLAIN], "is not a regular file"),
    "rdzv conf without value": (["--standalone", "--rdzv-conf=join_timeout", PLAIN], "--rdzv-conf: expected KEY=VALUE"),
    "rdzv conf bad number": (["--standalone", "--rdzv-conf=join_timeout=soon", PLAIN], "join_timeout must be"),
    "local rank that does not exist": (["--standalone", "--nproc-per-node=2", "--local-ranks-filter=0,5", PLAIN],
                                       "local rank(s) [5] do not exist"),
    "local ranks filter text": (["--standalone", "--local-ranks-filter=first", PLAIN], "--local-ranks-filter"),
    "bad redirects": (["--standalone", "--redirects=7", PLAIN], "--redirects: expected 0-3"),
    "bad tee": (["--standalone", "--tee=0:9", PLAIN], "--tee: expected 0-3"),
    "standalone with two nodes": (["--standalone", "--nnodes=2", PLAIN], "--standalone runs one node"),
    "two nodes without rdzv id": (["--nnodes=1:2", "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:9", PLAIN],
                                  "need --rdzv-id"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    args, expected = CASES[case]
    out = tmp_path / "out"
    (tmp_path / "latin1.yaml").write_bytes(b"fault_tolerance:\n  rank_heartbeat_timeout: 30  # caf\xe9\n")
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


def test_sigterm_while_the_config_is_composed_is_a_stop_not_bad_input(tmp_path):
    """A stop request before any worker exists ends with 75 (relaunch to run), never 2 (fix your input)."""
    marker = tmp_path / "composing"
    driver = (
        "import sys, time, pathlib\n"
        "import hydra\n"
        "def slow_compose(*args, **kwargs):\n"
        f"    pathlib.Path({str(marker)!r}).touch()\n"
        "    while True:\n"
        "        time.sleep(0.05)  # stands in for a composition that takes long\n"
        "hydra.compose = slow_compose  # inside the launcher's own error handling for composition\n"
        "from launcher.cli.entry import main\n"
        f"sys.exit(main(['--standalone', '--no-fork-server', {HYDRA!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", driver], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        wait_for(marker.exists, 30, "the launcher to start composing")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 75, err
    assert "SIGTERM before any worker started" in err and "Traceback" not in err
