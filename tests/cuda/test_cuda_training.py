"""train.py on CUDA under ft_launcher: NCCL on ``cuda:LOCAL_RANK``, a hang found and resumed, exact resume.

One GPU allows one NCCL rank (NCCL refuses two ranks on one device): these jobs run
``min(GPUs, 2)`` ranks for the process-group test and one rank otherwise.
"""

from __future__ import annotations

import re

import pytest
import torch
from ft_helpers.paths import CONF_DIR
from ft_helpers.train_jobs import final_checkpoint, metrics
from gpu_jobs import DETECTED, DETERMINISTIC_TRAIN, GPUS, UNBOUND_DEVICE, run_text, train_job

pytestmark = [pytest.mark.cuda, pytest.mark.timeout(150)]


def test_nccl_group_on_the_local_rank_device(tmp_path, jobs, record):
    nproc, logs, run_dir = min(GPUS, 2), tmp_path / "nccl", tmp_path / "run"
    logs.mkdir()
    env = {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT", "NCCL_DEBUG_FILE": f"{logs}/nccl.%p.log"}
    job = train_job(jobs, run_dir, "trainer.max_steps=20", "checkpoint.every=10", nproc=nproc, env=env)
    code, out = job.finish(90)
    assert code == 0, out[-4000:]
    text = run_text(out, run_dir)
    assert f"{nproc} rank(s) on cuda" in text, text[-3000:]
    assert not [w for w in UNBOUND_DEVICE if w in text], text[-3000:]
    # NCCL's own account of each communicator: "... rank R nranks N cudaDev D ... Init COMPLETE".
    nccl = "".join(p.read_text(errors="replace") for p in sorted(logs.glob("nccl.*.log")))
    bound = {}
    for line in nccl.splitlines():
        rank, dev = re.search(r"\brank (\d+)\b", line), re.search(r"\bcudaDev (\d+)\b", line)
        if "Init COMPLETE" in line and rank and dev:
            bound.setdefault(int(rank[1]), set()).add(int(dev[1]))
    assert bound == {r: {r} for r in range(nproc)}, f"rank -> cudaDev {bound}:\n{nccl[-3000:]}"
    record(setup=f"{nproc} rank(s) on NCCL, {GPUS} GPU(s)", ranks=nproc)


def test_a_hang_on_a_cuda_rank_is_found_and_the_job_resumes(tmp_path, jobs, record):
    run_dir = tmp_path / "run"
    job = train_job(jobs, run_dir, "fault=hang", "fault.rank=0", "fault.step=30", "fault_tolerance=demo",
                    "checkpoint.every=20", "trainer.max_steps=60", launcher_flags=("--max-restarts=1",))
    _, line = job.wait_for(DETECTED, 90)
    code, out = job.finish(90)
    assert code == 0, out[-4000:]
    assert re.search(r"\brank 0\b", line), line
    assert "resumed from step_00000020" in out, out[-4000:]
    assert {m["attempt"] for m in metrics(run_dir)} == {0, 1}
    state = final_checkpoint(run_dir)
    assert state["step"] == 60
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    gap = re.search(r"sent no heartbeat for ([0-9.]+) s", line)
    record(setup="1 rank on NCCL", detected_after_s=float(gap[1]) if gap else None, final_step=state["step"])


def test_exact_resume_on_cuda_with_deterministic_algorithms(tmp_path, jobs, record):
    env = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    common = ("trainer.max_steps=60", "checkpoint.every=20", "--config-path", str(CONF_DIR), "--config-name", "train")
    reference = train_job(jobs, tmp_path / "reference", *common, script=DETERMINISTIC_TRAIN, env=env)
    code, out = reference.finish(90)
    assert code == 0, out[-4000:]
    faulty = train_job(jobs, tmp_path / "faulty", *common, "fault=kill", "fault.rank=0", "fault.step=30",
                       launcher_flags=("--max-restarts=1",), script=DETERMINISTIC_TRAIN, env=env)
    code, out = faulty.finish(90)
    assert code == 0, out[-4000:]
    assert "resumed from step_00000020" in out, out[-4000:]
    got, want = final_checkpoint(tmp_path / "faulty"), final_checkpoint(tmp_path / "reference")
    assert got["step"] == want["step"] == 60
    differ = [k for k in want["model"] if not torch.equal(got["model"][k], want["model"][k])]
    assert not differ, f"weights differ from the uninterrupted run: {differ}"
    record(setup="1 rank on NCCL, torch.use_deterministic_algorithms(True)", tensors_equal=len(want["model"]))
