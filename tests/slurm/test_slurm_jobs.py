"""examples/slurm/train.sbatch on a real Slurm (scripts/slurm-up): a time limit's warning signal, a
preemption by `scancel --signal=USR1 --batch`, an array element requeued alone, and a hung rank on
one of two nodes. Every job is the example file itself, submitted with sbatch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
from slurm_cluster import SBATCH_FILE, Job, SlurmCluster, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("time_limited", "without_scontrol")]

TWO_RANKS = {"CPU_RANKS_PER_NODE": "2"}
QUIET = ["trainer.progress=false", "trainer.eval_every=0", "checkpoint.every=10000"]
# At least 92 s of steps (a 0.2 s pause before each; the pause, not the machine, sets the pace): longer
# than a time-limited run below can last before its warning, so it is always signalled.
LONG_STEPS = 460
LONG = [*QUIET, f"trainer.max_steps={LONG_STEPS}", "trainer.log_every=20", "fault=slow", "fault.seconds=0.2"]
# The limit and its warning: 120 s, SIGUSR1 due 90 s after the start. slurmctld checks limits every
# 30 s and sends a warning falling due before its next check at once, so it comes 60 to 90 s after
# the start: even on a loaded machine (30 s to the first step) each run makes progress before it.
TIME_LIMIT = ["--time=2", "--signal=B:USR1@30"]
# About 15 s of steps, signalled mid-run by the tests.
SHORT = [*QUIET, "trainer.max_steps=300", "trainer.log_every=1", "fault=slow", "fault.seconds=0.05"]


def assert_same_weights(got: dict, want: dict, max_steps: int) -> None:
    assert got["step"] == want["step"] == max_steps
    assert got["model"].keys() == want["model"].keys()
    assert all(torch.equal(got["model"][k], want["model"][k]) for k in want["model"]), "weights differ"


def stopped_step(job: Job) -> int:
    found = re.findall(r"stopped on request after step (\d+)", job.log())
    assert found, job.describe()
    return int(found[0])


@pytest.fixture(scope="module")
def time_limited(slurm: SlurmCluster, tmp_path_factory) -> tuple[Job, Job]:
    """The LONG job with a time limit and the same job without one, submitted before the first test so
    that they run while the other tests do; the last tests check them."""
    jobs = []
    for name, limit in (("time_limited", TIME_LIMIT), ("reference", [])):
        out = tmp_path_factory.mktemp(name)
        jobs.append(slurm.job(slurm.submit(out, LONG, limit, env=TWO_RANKS), out))
    return jobs[0], jobs[1]


@pytest.fixture(scope="module")
def without_scontrol(slurm: SlurmCluster, tmp_path_factory) -> Job:
    """A job whose batch script finds no scontrol (as in a container): PATH holds only srun, date and
    hostname. Rank 1 sends itself SIGTERM at step 50, so the job stops itself with exit 75."""
    out = tmp_path_factory.mktemp("without_scontrol")
    bin_dir = out / "bin"
    bin_dir.mkdir()
    for command in ("srun", "date", "hostname"):
        (bin_dir / command).symlink_to(shutil.which(command, path=slurm.env["PATH"]))
    overrides = [*QUIET, "trainer.max_steps=200", "trainer.log_every=10", "fault=sigterm", "fault.rank=1",
                 "fault.step=50"]
    return slurm.job(slurm.submit(out, overrides, env={**TWO_RANKS, "PATH": str(bin_dir)}), out)


def test_scancel_usr1_to_the_batch_shell_is_a_preemption(slurm, tmp_path):
    job = slurm.job(slurm.submit(tmp_path, SHORT, env=TWO_RANKS), tmp_path)
    job.wait_for_step(40, 120)
    signalled = time.time()
    slurm.run(["scancel", "--signal=USR1", "--batch", job.id])
    requeued = wait_for(lambda: job.info().get("Restarts") == "1" and time.time(), 60,
                        f"job {job.id} to be requeued ({job.describe()})", every=0.05)
    restarted = wait_for(lambda: job.state() == "RUNNING" and time.time(), 60, f"job {job.id} to run again",
                         every=0.05)
    info = job.wait_ended(120)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", job.describe()
    step = stopped_step(job)
    saved = next((job.run_dir / "checkpoints").glob(f"step_{step:08d}.*.pt"))
    # metrics.jsonl (every step): the first line past the saved step is the first step after resume
    first = next(m for m in job.metrics() if m["step"] == step + 1)
    assert f"resumed from step_{step:08d}" in job.log()
    assert job.final_state()["step"] == 300
    assert signalled < saved.stat().st_mtime < requeued < restarted < first["time"]
    print(f"\nscancel --signal=USR1 --batch -> checkpoint of step {step} saved "
          f"{saved.stat().st_mtime - signalled:.1f} s -> requeued {requeued - signalled:.1f} s -> running "
          f"again {restarted - signalled:.1f} s -> first step after resume {first['time'] - signalled:.1f} s")


def test_array_element_is_requeued_alone_while_the_other_finishes(slurm, tmp_path):
    array_id = slurm.submit(tmp_path, SHORT, ["--array=0-1"], env=TWO_RANKS)
    stopped, other = slurm.job(f"{array_id}_0", tmp_path), slurm.job(f"{array_id}_1", tmp_path)
    stopped.wait_for_step(40, 120)
    other.wait_for_step(20, 60)
    slurm.run(["scancel", "--signal=USR1", "--batch", stopped.id])
    for job, restarts in ((stopped, "1"), (other, "0")):
        info = job.wait_ended(180)
        assert info["JobState"] == "COMPLETED" and info["Restarts"] == restarts, job.describe()
    assert f"requeueing {array_id}_0 " in stopped.log()
    assert "SIGUSR1 received" not in other.log() and "resumed from" not in other.log()
    step = stopped_step(stopped)
    assert 40 <= step < 300 and f"resumed from step_{step:08d}" in stopped.log()
    assert_same_weights(stopped.final_state(), other.final_state(), 300)


def test_hang_on_one_of_two_nodes_restarts_both_within_the_job(slurm, tmp_path):
    overrides = [*QUIET, "trainer.max_steps=200", "trainer.log_every=10", "fault=hang", "fault.rank=1",
                 "fault.step=60", "fault_tolerance=demo", "checkpoint.every=50"]
    job = slurm.job(slurm.submit(tmp_path, overrides, ["--nodes=2"],
                                 env={"CPU_RANKS_PER_NODE": "1", "LAUNCHER_ARGS": "--max-restarts=2"}), tmp_path)
    info = job.wait_ended(240)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", job.describe()
    assert info["Restarts"] == "0", job.describe()  # recovered inside the job: no requeue
    assert info["NodeList"] == "n[1-2]"
    log = job.log()
    assert "no heartbeat" in log, job.describe()
    assert log.count("attempt 1 started: world size 2") == 2, job.describe()  # both nodes' launchers
    assert {m["attempt"] for m in job.metrics()} == {0, 1}
    assert job.final_state()["step"] == 200
    resumed = [m["step"] for m in job.metrics() if m["attempt"] == 1]
    assert min(resumed) <= 60  # from the checkpoint of step 50, not from scratch


def test_bad_input_is_never_requeued(slurm, tmp_path):
    job = slurm.job(slurm.submit(tmp_path, ["trainer.max_steps=0"]), tmp_path)
    info = job.wait_ended(120)
    assert info["JobState"] == "FAILED" and info["ExitCode"] == "2:0" and info["Restarts"] == "0", job.describe()
    assert "stopped on bad input (exit 2)" in job.log()
    assert not os.path.exists(job.run_dir / "checkpoints") or not any((job.run_dir / "checkpoints").iterdir())


def test_a_job_that_cannot_progress_is_never_requeued(slurm, tmp_path):
    """A sample that fails every attempt: ft_launcher stops with 93 and the script does not requeue it."""
    helpers = str(Path(__file__).resolve().parents[1] / "ft_helpers")
    overrides = [*QUIET, "trainer.max_steps=60", "trainer.log_every=10", "checkpoint.every=2", "fault_tolerance=demo",
                 "data.num_workers=0", "data.batch_size=16", "data.dataset.num_samples=512",
                 "data.dataset._target_=failing_data.CorruptSample", "+data.dataset.bad_index=300"]
    job = slurm.job(slurm.submit(tmp_path, overrides, env={"PYTHONPATH": helpers,
                                                           "LAUNCHER_ARGS": "--max-restarts=10"}), tmp_path)
    info = job.wait_ended(180)
    assert info["ExitCode"] == "93:0" and info["Restarts"] == "0", job.describe()
    log = job.log()
    assert "restarting cannot help:" in log and "ValueError: corrupt sample 300" in log, job.describe()
    assert "restarting cannot help (exit 93)" in log and "not requeued" in log, job.describe()
    assert list((job.run_dir / "checkpoints").glob("step_*.pt")), "the checkpoints before the bad sample survive"


def test_sbatch_file_outside_slurm_says_how_to_submit(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run(["bash", str(SBATCH_FILE)], env=env, capture_output=True, text=True, timeout=30,
                          cwd=Path(tmp_path))
    assert proc.returncode == 2 and "submit it: sbatch" in proc.stderr


@pytest.mark.timeout(600)
def test_time_limit_signal_saves_requeues_resumes_and_matches_an_unlimited_run(time_limited):
    job, reference = time_limited  # submitted before the first test of this module
    info = job.wait_ended(540)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", job.describe()
    assert int(info["Restarts"]) >= 1, job.describe()  # requeued under the same job id
    log = job.log()
    assert "SIGUSR1 received: asking the ranks to save a checkpoint and stop" in log
    assert f"stopped with a checkpoint: requeueing {job.id} (restart count 0)" in log
    assert f"job {job.id}: restart count 1," in log  # SLURM_RESTART_COUNT, in the appended output
    step = stopped_step(job)
    assert f"resumed from step_{step:08d}" in log
    assert 0 < step < LONG_STEPS
    ref = reference.wait_ended(120)
    assert ref["JobState"] == "COMPLETED" and ref["Restarts"] == "0", reference.describe()
    assert_same_weights(job.final_state(), reference.final_state(), LONG_STEPS)


def test_without_scontrol_exit_75_is_requeued_by_requeue_exit(without_scontrol):
    job = without_scontrol
    info = job.wait_ended(240)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", job.describe()
    assert "scontrol is not here: exit 75 (SLURM requeues it with RequeueExit=75)" in job.log()
    step = stopped_step(job)
    assert 50 <= step < 200 and f"resumed from step_{step:08d}" in job.log()
    assert job.final_state()["step"] == 200


NODE_CHECK = '''
import os


def refuse_the_first_node():
    """The first node this check runs on is unhealthy for the rest of the test; every other one is fine."""
    node = os.environ.get("SLURMD_NODENAME", "")
    try:
        fd = os.open(os.environ["BAD_NODE_FILE"], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, node.encode())
        os.close(fd)
    except FileExistsError:
        pass
    with open(os.environ["BAD_NODE_FILE"]) as f:
        if f.read() == node:
            raise RuntimeError(f"node {node} is the unhealthy node of this test")
'''


def test_a_node_failing_a_health_check_is_excluded_and_the_job_finishes_on_the_other(slurm, tmp_path):
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "node_check.py").write_text(NODE_CHECK)
    overrides = [*QUIET, "trainer.max_steps=20", "trainer.log_every=10",
                 "fault_tolerance.health_checks=[node_check.refuse_the_first_node]"]
    env = {"PYTHONPATH": str(checks), "BAD_NODE_FILE": str(tmp_path / "bad_node")}
    job = slurm.job(slurm.submit(tmp_path, overrides, ["--nodes=1"], env=env), tmp_path)
    info = job.wait_ended(180)
    bad = (tmp_path / "bad_node").read_text()
    assert bad in ("n1", "n2"), job.describe()
    other = "n2" if bad == "n1" else "n1"
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", job.describe()
    assert info["Restarts"] == "1" and info["ExcNodeList"] == bad and info["NodeList"] == other, job.describe()
    log = job.log()
    assert f"node {bad} is unhealthy: health check 'node_check.refuse_the_first_node' failed" in log
    assert "starting no worker here (exit 69)" in log
    assert f"node(s) {bad} failed a health check (exit 69): requeueing {job.id} without {bad}" in log
    assert job.final_state()["step"] == 20
    assert {m["attempt"] for m in job.metrics()} == {0}  # no worker ever started on the unhealthy node
