"""The fork server with CUDA ranks: it never initialises CUDA itself, and what a restart costs with and without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ft_helpers.process_tree import children
from gpu_jobs import DETECTED, worker_job

pytestmark = [pytest.mark.cuda, pytest.mark.timeout(150)]

IMPORTS = "import torch, torch.distributed, torch.nn.parallel"


def zygote_of(launcher: int) -> int | None:
    """The launcher's child running the zygote (its forked workers inherit its command line, not its parent)."""
    for pid in children().get(launcher, []):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(arg.endswith("zygote") for arg in argv):
            return pid
    return None


def cuda_signs(pid: int) -> dict:
    """What a process that initialised CUDA has: the driver's device files open, libcuda mapped."""
    files = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/dev/nvidia"):
            files.add(target)
    return {"device_files": sorted(files), "libcuda": "libcuda.so" in Path(f"/proc/{pid}/maps").read_text()}


def test_the_fork_server_never_initialises_cuda(tmp_path, jobs, record):
    out = tmp_path / "out"
    release = out / "release"
    job = worker_job(jobs, out, 1, "mode=recover", f"hold={release}")
    first = job.wait_record("first_step.a0.r0", 120)  # a forked rank trains on CUDA: the fork was safe
    zygote = zygote_of(job.proc.pid)
    assert zygote is not None, "no fork server below the launcher"
    in_zygote, in_rank = cuda_signs(zygote), cuda_signs(first["pid"])
    release.touch()
    code, text = job.finish(60)
    assert code == 0, text[-4000:]
    assert in_rank["device_files"] or in_rank["libcuda"], f"a CUDA rank shows no sign of CUDA here: {in_rank}"
    assert not in_zygote["device_files"], f"the fork server opened the GPU: {in_zygote}"
    # libcuda mapped by imports alone (some builds link it) says nothing; otherwise it must be absent.
    probe = subprocess.run([sys.executable, "-c", f"{IMPORTS}; print('libcuda.so' in open('/proc/self/maps').read())"],
                           capture_output=True, text=True, timeout=120)
    imports_map_it = probe.stdout.strip() == "True"
    if not imports_map_it:
        assert not in_zygote["libcuda"], f"the fork server loaded the CUDA driver: {in_zygote}"
    record(setup="1 rank", zygote_device_files=len(in_zygote["device_files"]), zygote_libcuda=in_zygote["libcuda"],
           rank_device_files=len(in_rank["device_files"]), imports_map_libcuda=imports_map_it)


@pytest.mark.parametrize("fork_server", [True, False], ids=["fork_server", "no_fork_server"])
def test_detection_to_the_first_step_of_a_restarted_cuda_rank(tmp_path, jobs, record, fork_server):
    out = tmp_path / "out"
    job = worker_job(jobs, out, 1, "mode=recover", "hang=1", fork_server=fork_server)
    launched = job.wait_record("first_step.a0.r0", 120)
    hang = job.wait_record("hang.a0.r0", 60)
    found, _ = job.wait_for(DETECTED, 30)
    restarted = job.wait_record("first_step.a1.r0", 120)
    code, text = job.finish(60)
    assert code == 0, text[-4000:]
    record(setup="1 rank on NCCL, rank_heartbeat_timeout 2 s",
           launch_to_first_step_s=round(launched["time"] - job.started, 2),
           hang_to_detection_s=round(found - hang["time"], 2),
           detection_to_first_step_s=round(restarted["time"] - found, 2))
