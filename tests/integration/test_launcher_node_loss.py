"""A lost node is named as lost: two launchers on one host, one SIGKILLed, the survivor names it instead of its own rank."""

from __future__ import annotations

import os
import signal

import pytest
from ft_helpers.launches import PLAIN, Launches, StderrLines, records, wait_for
from ft_helpers.process_tree import descendants
from ft_helpers.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def launches(tmp_path):
    runs = Launches(tmp_path)
    yield runs
    runs.cleanup()


def test_the_survivor_names_the_killed_node_as_lost_and_still_stops_with_75(launches, tmp_path):
    out = tmp_path / "out"
    node = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}",
            "--rdzv-id=node-loss", "--max-restarts=1", "--ft-workload-check-interval=0.1", PLAIN, f"out={out}",
            "steps=100000"]
    survivor = launches.start(node, out)
    doomed = launches.start(node, out)
    wait_for(lambda: all(records(out).get((rank, 0), {}).get("steps", 0) >= 1 for rank in (0, 1)), 60,
             "both nodes' ranks to take a step")
    err = StderrLines(survivor)
    below = descendants(doomed.pid)
    os.kill(doomed.pid, signal.SIGKILL)  # the launcher first, as when its machine goes: then all it started
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: err.first("was lost"), 60, "the survivor to name the lost node")
    survivor.send_signal(signal.SIGTERM)  # it waits at the rendezvous for a second node: end the test here
    survivor.wait(60)
    text = err.text()
    (line,) = [line for line in text.splitlines() if "was lost" in line]
    assert f"launcher pid {doomed.pid}" in line and "ERROR" in line, text[-4000:]
    assert "crashed (" not in text, text[-4000:]  # its own rank is not blamed
    assert survivor.returncode == 75, text[-4000:]
