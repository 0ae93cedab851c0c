"""A lost node is named as lost: two launchers on one host, one SIGKILLed, the survivor names it instead of its own rank."""

from __future__ import annotations

import os
import re
import signal

import pytest
from ft_helpers.launches import PLAIN, StderrLines, records, wait_for
from ft_helpers.process_tree import descendants
from ft_helpers.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


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


def _two_nodes(port: int, rdzv_id: str, out, flags: tuple = (), args: tuple = ()) -> list[str]:
    return ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
            f"--rdzv-id={rdzv_id}", "--max-restarts=1", "--ft-workload-check-interval=0.1", *flags, PLAIN,
            f"out={out}", *args]


def _kill_whole(proc) -> None:
    below = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _lost_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "lost" in line and "time lost" not in line]


@pytest.mark.parametrize("doomed_hosts_store", [True, False], ids=["store-host-lost", "other-node-lost"])
def test_the_lost_node_is_named_by_its_counter_whichever_node_hosts_the_store(launches, tmp_path,
                                                                              doomed_hosts_store):
    """Which node hosts the c10d store is fixed (is_host): the lost one is named either way, from the counters
    or the unreachable store, never from the host it ran on; the cause in the summary reads 'lost, then'."""
    out, port = tmp_path / "out", free_port()
    survivor = launches.start(_two_nodes(port, "by-counter", out, (f"--rdzv-conf=is_host={int(not doomed_hosts_store)}",),
                                         ("steps=100000",)), out)
    doomed = launches.start(_two_nodes(port, "by-counter", out, (f"--rdzv-conf=is_host={int(doomed_hosts_store)}",),
                                       ("steps=100000",)), out)
    wait_for(lambda: all(records(out).get((rank, 0), {}).get("steps", 0) >= 1 for rank in (0, 1)), 60,
             "both nodes' ranks to take a step")
    err = StderrLines(survivor)
    _kill_whole(doomed)
    wait_for(lambda: err.first("was lost"), 60, "the survivor to name the lost node")
    survivor.send_signal(signal.SIGTERM)
    survivor.wait(60)
    text = err.text()
    (line,) = [line for line in text.splitlines() if "was lost" in line]
    assert f"launcher pid {doomed.pid}" in line and "ERROR" in line, text[-4000:]
    assert ("rendezvous store it hosted at 127.0.0.1:" in line) == doomed_hosts_store, line
    (warning,) = [line for line in text.splitlines() if "its collectives fail without node" in line]
    assert "WARNING" in warning and "rank" in warning, text[-4000:]
    # The summary's cause (the same text ft_launches.jsonl gets when the job has a run directory).
    assert re.search(rf"#0: node \d \(host \S+, launcher pid {doomed.pid}, rank \d\) lost(?: \(the rendezvous "
                     rf"store at \S+\))?, then rank \d failed \(exit 1\)", text), text[-4000:]
    # Without the store's host the survivor cannot rendezvous again: it may end at once with 1 before the
    # SIGTERM arrives (the node-loss work makes that a requeue code); with the store alive it waits and stops.
    assert survivor.returncode in ({1, 75} if doomed_hosts_store else {75}), text[-4000:]
    assert "SignalException" not in text, text[-4000:]  # a late SIGTERM never raises out of the launcher


def test_a_rank_failing_on_a_live_peer_node_is_not_called_lost(launches, tmp_path):
    """Rank 1 exits 13 on its node: the other node's rank then fails in a collective, but its peer's counter
    still advances (or it said it is leaving), so nothing is called lost, and both finish the restarted attempt."""
    out, port = tmp_path / "out", free_port()
    nodes = [launches.start(_two_nodes(port, "alive-peer", out, args=("crash=1@0", "steps=20")), out) for _ in range(2)]
    errs = [node.communicate(timeout=90)[1] for node in nodes]
    text = "\n".join(errs)
    assert all(node.returncode == 0 for node in nodes), text[-6000:]
    assert _lost_lines(text) == [], text[-6000:]
    assert "crashed (exit 13)" in text, text[-6000:]
    assert "the other nodes' counters were checked in" in text, text[-6000:]
    found = records(out)
    assert found[(0, 1)]["finished"] and found[(1, 1)]["finished"], found
