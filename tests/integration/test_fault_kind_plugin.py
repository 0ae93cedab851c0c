"""A new fault kind is one class plus one YAML file: a kind defined outside the repository's code,
selected by a config file on Hydra's search path, fires under ft_launcher and the job recovers."""

from __future__ import annotations

import os

import pytest
from ft_helpers.train_jobs import FAST_DETECTION, FT_LAUNCHER, final_checkpoint, launch

pytestmark = pytest.mark.integration

FAULT_CLASS = '''
import os
from train.faults import FaultKind, fault_kind

@fault_kind("sudden_exit")
class SuddenExit(FaultKind):
    """The rank exits with a code of the config's choosing, skipping every cleanup."""
    options = {"code": 3}

    def before_step(self, step):
        self.announce(step)
        os._exit(self.plan.options["code"])
'''

FAULT_YAML = """\
defaults:
  - none
  - _self_

kind: site_faults.SuddenExit
rank: 1
step: 30
code: 7
"""


def test_a_fault_kind_added_as_one_class_and_one_yaml_fires_and_the_job_recovers(tmp_path, monkeypatch):
    (tmp_path / "site_faults.py").write_text(FAULT_CLASS)
    conf = tmp_path / "conf" / "fault"
    conf.mkdir(parents=True)
    (conf / "sudden_exit.yaml").write_text(FAULT_YAML)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    run_dir = tmp_path / "run"
    code, out = launch([*FT_LAUNCHER, "--max-restarts=1"], run_dir, *FAST_DETECTION,
                       f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "fault=sudden_exit",
                       "trainer.max_steps=60", "checkpoint.every=20", "data.num_workers=0")
    assert code == 0, out[-4000:]
    assert "injected fault 'sudden_exit' on rank 1 at step 30 (attempt 0)" in out
    assert "rank 1 (local rank 1, pid" in out and "exited with code 7" in out  # the option reached the class
    assert "resumed from step_00000020" in out
    assert final_checkpoint(run_dir)["step"] == 60
