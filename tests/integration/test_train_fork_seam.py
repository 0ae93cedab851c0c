"""The fork seam under real ft_launcher (2 ranks, gloo): a fork's dict batches, model and objective from outside
the template survive a killed rank bitwise; a copy of train.py + conf/ elsewhere trains."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from ft_helpers.paths import REPO
from ft_helpers.train_jobs import (
    FAST_DETECTION,
    FT_LAUNCHER,
    RUN,
    TORCHRUN,
    assert_same_weights,
    clean_env,
    metrics,
    run_to_end,
)

pytestmark = pytest.mark.integration

FORK = REPO / "examples" / "fork_dict_batch"
FORK_OVERRIDES = [f"hydra.searchpath=[file://{FORK / 'conf'}]", "data=masked_points", "model=masked_mlp",
                  "objective=penalised"]


def fork_job(run_dir, *overrides):
    return run_to_end([*FT_LAUNCHER, "--max-restarts=2", "train.py", *RUN, *FORK_OVERRIDES, *FAST_DETECTION,
                       *overrides, f"hydra.run.dir={run_dir}"], env_extra={"PYTHONPATH": str(FORK)}, timeout=150)


def test_a_forks_dict_batches_and_objective_survive_a_killed_rank_bitwise(tmp_path):
    code, out = fork_job(tmp_path / "reference")
    assert code == 0, out[-4000:]
    code, out = fork_job(tmp_path / "faulty", "fault=kill", "fault.rank=1", "fault.step=120")
    assert code == 0, out[-4000:]
    assert "attempt 1 started" in out
    assert_same_weights(tmp_path / "faulty", tmp_path / "reference")
    logged = metrics(tmp_path / "faulty")
    assert {m["attempt"] for m in logged} == {0, 1}
    assert any("acc" in m for m in logged) and any("val_acc" in m for m in logged)


def test_a_copy_of_train_py_and_conf_trains_elsewhere(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "train.py", project / "train.py")
    shutil.copytree(REPO / "conf", project / "conf")
    for name, cmd in (("python", [sys.executable]), ("torchrun", TORCHRUN), ("ft_launcher", FT_LAUNCHER)):
        run_dir = tmp_path / name
        proc = subprocess.run([*cmd, "train.py", "trainer.max_steps=4", "trainer.progress=false",
                               f"hydra.run.dir={run_dir}"], cwd=project, env=clean_env(), capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        assert '"step": 4' in (run_dir / "metrics.jsonl").read_text()
