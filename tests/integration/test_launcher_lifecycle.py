"""ft_launcher's process lifecycle: SIGTERM and SIGKILL to the launcher, parallel launches, two nodes, sweeps."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from ft_helpers.launches import HYDRA, PLAIN, WORKERS, pid_alive, records, wait_for
from ft_helpers.processes import free_port

ATTEMPT_WORKER = str(WORKERS / "attempt_worker.py")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = ["--ft-workload-check-interval=0.1"]


def _running(out: Path, ranks: int = 2, attempt: int = 0) -> dict:
    found = records(out)
    ready = [found.get((rank, attempt)) for rank in range(ranks)]
    return found if all(r and r["steps"] >= 1 for r in ready) else {}


@pytest.mark.parametrize(("fork", "sig"), [(True, signal.SIGTERM), (False, signal.SIGTERM), (True, signal.SIGINT)],
                         ids=["fork-server", "processes", "sigint"])
def test_sigterm_is_forwarded_and_a_clean_stop_exits_75(launches, tmp_path, fork, sig):
    out = tmp_path / "out"
    extra = [] if fork else ["--no-fork-server"]
    proc = launches.start(["--standalone", "--nproc-per-node=2", *extra, *FAST, PLAIN, f"out={out}",
                           "steps=100000", "sigterm=75"], out)
    wait_for(lambda: _running(out), 60, "both ranks to take a step")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    found = records(out)
    assert found[(0, 0)]["stopped"] and found[(1, 0)]["stopped"], "the workers saw SIGTERM and stopped together"
    assert "stopped on request" in err


def test_sigkill_to_the_launcher_leaves_no_worker(launches, tmp_path):
    out = tmp_path / "out"
    proc = launches.start(["--standalone", "--nproc-per-node=2", *FAST, PLAIN, f"out={out}", "steps=100000"], out)
    found = wait_for(lambda: _running(out), 60, "both ranks to take a step")
    pids = [r["pid"] for r in found.values()]
    assert all(pid_alive(pid) for pid in pids)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), 10, f"workers {pids} to vanish")


def test_sigkill_to_the_launcher_while_its_fork_server_imports_leaves_nothing(launches, tmp_path):
    """The fork server spends seconds importing torch before it reads its pipe: its parent-death
    signal, not the pipe closing, must end it when the launcher is killed that early."""
    out = tmp_path / "out"
    proc = launches.start(["--standalone", "--nproc-per-node=2", PLAIN, f"out={out}", "steps=2"], out)
    children = wait_for(lambda: [p for p in _children(proc.pid) if pid_alive(p)], 30, "the fork server to start")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # At once: the default action of its parent-death signal, while it has no workers yet.
    wait_for(lambda: not any(pid_alive(p) for p in children), 1.5, f"the fork server {children} to vanish")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except OSError:
            continue
    return found


def test_a_job_without_run_or_log_dir_leaves_no_stack_temp_dir(launches, tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    code, err = launches.run(["--standalone", "--nproc-per-node=2", *FAST, PLAIN, f"out={out}", "steps=2"], out,
                             env={"TMPDIR": str(tmp)})
    assert code == 0, err
    assert not list(tmp.glob("ft_launcher_stacks_*")), "the empty stacks directory is removed at the end"


def test_two_launches_on_one_machine_do_not_interfere(launches, tmp_path):
    hung, healthy = tmp_path / "hung", tmp_path / "healthy"
    common = ["--standalone", "--nproc-per-node=2", "--max-restarts=1", *FAST, "--ft-rank-heartbeat-timeout=1.5"]
    first = launches.start([*common, PLAIN, f"out={hung}", "hang=1@0"], hung)
    second = launches.start([*common, PLAIN, f"out={healthy}", "steps=40"], healthy)
    _, err_first = first.communicate(timeout=90)
    _, err_second = second.communicate(timeout=90)
    assert first.returncode == 0 and second.returncode == 0, err_first + err_second
    assert "sent no heartbeat" in err_first
    assert "sent no heartbeat" not in err_second and "restarting" not in err_second
    assert sorted(records(healthy)) == [(0, 0), (1, 0)]
    assert records(hung)[(1, 1)]["finished"]


def test_hang_on_one_of_two_nodes_restarts_both(launches, tmp_path):
    out = tmp_path / "out"
    port = free_port()
    node = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
            "--rdzv-id=two-nodes", "--max-restarts=2", *FAST]
    # Only node 1 can detect the hang (short timeout); node 0 must follow through the rendezvous.
    node0 = launches.start([*node, "--ft-rank-heartbeat-timeout=600", PLAIN, f"out={out}", "hang=1@0", "steps=10"],
                           out)
    node1 = launches.start([*node, "--ft-rank-heartbeat-timeout=1.5", PLAIN, f"out={out}", "hang=1@0", "steps=10"],
                           out)
    _, err1 = node1.communicate(timeout=90)
    _, err0 = node0.communicate(timeout=90)
    assert node0.returncode == 0 and node1.returncode == 0, err0 + err1
    assert "sent no heartbeat" in err1
    assert "sent no heartbeat" not in err0
    found = records(out)
    assert found[(0, 1)]["finished"] and found[(1, 1)]["finished"], "both nodes ran a second attempt"
    assert found[(0, 1)]["world_size"] == 2


def test_nodes_that_count_restarts_differently_still_join_one_attempt(launches, tmp_path):
    """Node 1's rank hangs while node 0's rank is busy outside collectives: node 1 restarts (counted),
    node 0 only follows the rendezvous (not counted), so their restart counts now differ. The new
    attempt must still form one process group, not stall in init_process_group."""
    out = tmp_path / "out"
    port = free_port()
    node = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
            "--rdzv-id=two-counts", "--max-restarts=1", *FAST]
    worker = [ATTEMPT_WORKER, f"out={out}", "dist_timeout=20"]  # the rank on the 1.5 s node hangs
    node0 = launches.start([*node, "--ft-rank-heartbeat-timeout=600", *worker], out)
    node1 = launches.start([*node, "--ft-rank-heartbeat-timeout=1.5", *worker], out)
    _, err1 = node1.communicate(timeout=90)
    _, err0 = node0.communicate(timeout=90)
    assert node0.returncode == 0 and node1.returncode == 0, err0 + err1
    assert "sent no heartbeat" in err1 and "another node is waiting at the rendezvous" in err0
    found = records(out)
    # Node 0 restarted without counting it (attempt 0 again), node 1 counted it (attempt 1): one group.
    assert sorted(attempt for _, attempt in found) == [0, 1], found
    assert all(r["finished"] and r["world_size"] == 2 and r["sum"] == 2 ** 5 for r in found.values()), found


def test_multirun_runs_every_point_and_reports_a_failure(launches, tmp_path):
    out = tmp_path / "out"
    code, err = launches.run(["--standalone", "--nproc-per-node=2", *FAST, HYDRA, "-m",
                              "+fault.crash=1@*,7@0", "fault.steps=3"], out, timeout=120)
    assert code == 1, err
    sweep = out / "sweep"
    failed, finished = records(sweep / "0" / "ranks"), records(sweep / "1" / "ranks")
    assert (1, 0) in failed and not failed[(1, 0)].get("finished")
    assert finished[(0, 0)]["finished"] and finished[(0, 0)]["steps"] == 3
    assert "point +fault.crash=1@*: failed" in err and "point +fault.crash=7@0: finished" in err


def test_workers_stopping_with_75_on_their_own_are_not_restarted(launches, tmp_path):
    """A scheduler may signal the workers directly: exit 75 means "stopped", not a failure to restart."""
    out = tmp_path / "out"
    proc = launches.start(["--standalone", "--nproc-per-node=2", "--max-restarts=3", *FAST, PLAIN, f"out={out}",
                           "steps=100000", "sigterm=75"], out)
    found = wait_for(lambda: _running(out), 60, "both ranks to take a step")
    os.kill(found[(1, 0)]["pid"], signal.SIGTERM)  # one rank sees it; the ranks agree to stop together
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert "restarting" not in err
    assert sorted(records(out)) == [(0, 0), (1, 0)]
