"""One job per run directory: a second ft_launcher in a live job's run dir is refused before any worker starts;
a dead job's lock (SIGKILLed here, or on another host and no longer refreshed) is taken over; the nodes of one
multi-node job share the directory."""

from __future__ import annotations

import json
import re
import signal
import socket
import time

import pytest
from ft_helpers.launches import HYDRA, pid_alive, records, wait_for
from ft_helpers.processes import free_port

from launcher.job.run_dir_lock import LOCK_DIR, STALE_AFTER

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = ["--standalone", "--nproc-per-node=2", "--ft-workload-check-interval=0.1"]


def test_a_second_job_in_a_live_jobs_run_dir_is_refused_and_a_sigkilled_ones_is_taken_over(launches, tmp_path):
    out = tmp_path / "out"
    first = launches.start([*FAST, HYDRA, "fault.steps=100000"], out)
    wait_for(lambda: len(records(out / "run" / "ranks")) == 2, 60, "the first job's ranks to start")
    code, err = launches.run([*FAST, HYDRA], out, timeout=60)
    assert code == 2, err
    (line,) = [line for line in err.splitlines() if "in use by another job" in line]
    host = socket.gethostname()
    assert re.search(rf"ft_launcher: error: .*run is in use by another job \(host {re.escape(host)}, "
                     rf"pid {first.pid}, since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\)", line), line
    assert "attempt 0 started" not in err and sorted(records(out / "run" / "ranks")) == [(0, 0), (1, 0)]
    first.send_signal(signal.SIGKILL)  # its lock stays behind, its pid is gone
    first.wait(30)
    wait_for(lambda: not any(pid_alive(r["pid"]) for r in records(out / "run" / "ranks").values()), 30,
             "the killed job's ranks to die")
    code, err = launches.run([*FAST, HYDRA], out, timeout=60)
    assert code == 0, err
    assert f"run directory lock of a job that is gone (host {host}, pid {first.pid}" in err and "taken over" in err
    assert not list((out / "run" / LOCK_DIR).glob("*.json")), "a finished job leaves no lock"


@pytest.mark.parametrize("age", [0.0, STALE_AFTER * 2], ids=["refreshed", "stale"])
def test_another_hosts_lock_is_honoured_while_refreshed_and_taken_over_once_stale(launches, tmp_path, age):
    out = tmp_path / "out"
    lock = out / "run" / LOCK_DIR
    lock.mkdir(parents=True)
    now = time.time()
    (lock / "node7.4242.json").write_text(json.dumps({
        "host": "node7", "pid": 4242, "job_id": "other", "since": now - age - 5, "refreshed_at": now - age}))
    code, err = launches.run([*FAST, HYDRA], out, timeout=60)
    if age == 0.0:
        assert code == 2, err
        assert "is in use by another job (host node7, pid 4242, since" in err and "attempt 0 started" not in err
    else:
        assert code == 0, err
        assert "run directory lock of a job that is gone (host node7, pid 4242" in err


def test_the_nodes_of_one_job_share_its_run_dir(launches, tmp_path):
    out = tmp_path / "out"
    port = free_port()
    node = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
            "--rdzv-id=shared-dir", "--ft-workload-check-interval=0.1", HYDRA]
    node0, node1 = launches.start(node, out), launches.start(node, out)
    _, err0 = node0.communicate(timeout=90)
    _, err1 = node1.communicate(timeout=90)
    assert node0.returncode == 0 and node1.returncode == 0, err0 + err1
    assert "in use by another job" not in err0 + err1
    assert all(r["finished"] for r in records(out / "run" / "ranks").values())
