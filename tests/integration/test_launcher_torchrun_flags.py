"""Every flag of the installed torchrun's --help is one ft_launcher accepts, or refuses in one line saying why (exit 2)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from ft_helpers.launches import FT_LAUNCHER, PLAIN
from ft_helpers.paths import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _help(cmd: list[str]) -> str:
    done = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout


def option_flags(help_text: str) -> set[str]:
    """The long flags argparse lists in its options section (one option line each, spellings first)."""
    found = set()
    for line in help_text.splitlines():
        head = re.match(r"^\s{2}(-[^\s].*?)(?:\s{2,}|$)", line)
        if head:
            found.update(re.findall(r"--[\w-]+", head.group(1)))
    return found - {"--help"}


def test_every_torchrun_flag_is_accepted_or_refused_with_a_reason(tmp_path):
    torchrun = option_flags(_help([sys.executable, "-m", "torch.distributed.run"]))
    assert {"--nproc-per-node", "--rdzv-backend", "--max-restarts"} <= torchrun, torchrun
    ours = option_flags(_help(FT_LAUNCHER))
    missing = sorted(torchrun - ours)
    assert not missing, f"torchrun flags ft_launcher does not list: {missing}"
    # The one refused here: its line says why, and nothing starts.
    done = subprocess.run([*FT_LAUNCHER, "--numa-binding=node", "--standalone", PLAIN, f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("ft_launcher: error: --numa-binding is not supported: ") and "numactl" in line
    done = subprocess.run([*FT_LAUNCHER, "--logs-specs=nope", "--standalone", PLAIN, f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2 and "no entry point torchrun.logs_specs[nope]" in done.stderr, done.stderr


def test_torchrun_flags_taken_with_their_meaning_run_a_job(tmp_path):
    """--run-path, --virtual-local-rank, --shutdown-timeout, --event-log-handler and a stdout filter, as torchrun."""
    done = subprocess.run([*FT_LAUNCHER, "--standalone", "--nproc-per-node=2", "--run-path", "--virtual-local-rank",
                           "--shutdown-timeout=5", "--event-log-handler=null", "--duplicate-stdout-filters=step",
                           PLAIN, f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=90, cwd=REPO)
    assert done.returncode == 0, done.stderr[-4000:]
