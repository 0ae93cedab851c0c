"""A private 2-node Slurm cluster for the session (scripts/slurm-up), stopped in teardown even after a failure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_cluster import REPO, SlurmCluster


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> SlurmCluster:
    """Two slurmd's (n1, n2) on this host with their controller and munged; stopped at the end."""
    if os.geteuid() != 0:
        pytest.skip("the private Slurm cluster is started as root (scripts/slurm-up)")
    directory = tmp_path_factory.mktemp("slurm-cluster")
    env = {k: v for k, v in os.environ.items() if k != "PULSETRAIN_FT_ENDPOINT"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    # RequeueExit=75: how a job whose batch script has no scontrol (a container) is requeued.
    up = subprocess.run([str(REPO / "scripts" / "slurm-up"), "--nodes", "2", "--requeue-exit", "75",
                         "--dir", str(directory)], env=env,
                        capture_output=True, text=True, timeout=300)
    try:
        if up.returncode != 0:
            pytest.fail(f"scripts/slurm-up failed ({up.returncode}):\n{up.stderr}")
        for name, value in re.findall(r"^export (\w+)=(.*)$", up.stdout, re.M):
            env[name] = value
        cluster = SlurmCluster(directory, env)
        yield cluster
        cluster.cancel_all()
    finally:
        subprocess.run([str(REPO / "scripts" / "slurm-down"), "--keep", str(directory)], env=env,
                       capture_output=True, text=True, timeout=120)
