"""Every config group option composes and resolves; the run-dir and .hydra policies hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ft_helpers.paths import CONF_DIR
from omegaconf import OmegaConf

import train

GROUPS = ["model", "data", "optim", "trainer", "checkpoint", "fault", "fault_tolerance", "logger", "debug", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


# Options that only make sense together (a language model reads token ids, not feature vectors).
PARTNERS = {"data=text": ["model=gpt", "criterion._target_=workloads.gpt.model.TokenCrossEntropy"], "model=gpt": ["data=text"]}


@pytest.mark.parametrize("override", [f"{g}={o}" for g in GROUPS for o in options(g)])
def test_every_option_composes_and_resolves(compose_config, override, tmp_path):
    cfg = compose_config(override, *PARTNERS.get(override, []), f"run_dir={tmp_path}")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["run_dir"] == str(tmp_path)
    for key in ("model", "data", "optim", "trainer", "checkpoint", "fault", "fault_tolerance", "criterion"):
        assert key in resolved


def test_primary_config_lists_self_first_and_has_off_switches():
    defaults = OmegaConf.load(CONF_DIR / "train.yaml").defaults
    assert defaults[0] == "_self_"
    assert {"debug": None} in defaults and {"experiment": None} in defaults


def test_fault_tolerance_values_are_validated_before_training(compose_config, tmp_path):
    cfg = compose_config("fault_tolerance.rank_heartbeat_timeout=-1", f"run_dir={tmp_path}")
    with pytest.raises(train.USER_ERRORS, match="rank_heartbeat_timeout"):
        train.run(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_bad_training_values_are_user_errors(compose_config, tmp_path):
    for override, key in (("fault.kind=bogus", "fault.kind"), ("trainer.max_steps=0", "trainer.max_steps"),
                          ("checkpoint.keep_last=0", "checkpoint.keep_last")):
        with pytest.raises(train.USER_ERRORS, match=key):
            train.run(compose_config(override, f"run_dir={tmp_path}"))


def test_run_dir_uses_only_builtin_resolvers_and_env_wins(compose_config, monkeypatch):
    cfg = compose_config(return_hydra_config=True)
    run_dir = OmegaConf.to_container(cfg.hydra.run, resolve=False)["dir"]
    assert "rank_zero_only" not in run_dir and "${oc.env:PULSETRAIN_RUN_DIR" in run_dir
    monkeypatch.setenv("PULSETRAIN_RUN_DIR", "/abs/run")
    assert compose_config(return_hydra_config=True).hydra.run.dir == "/abs/run"
    monkeypatch.delenv("PULSETRAIN_RUN_DIR")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job42")
    assert compose_config(return_hydra_config=True).hydra.run.dir == "outputs/job42"


@pytest.mark.parametrize("rank,expected", [("0", ".hydra"), ("1", None)])
def test_only_rank_zero_writes_hydra_subdir(compose_config, monkeypatch, rank, expected):
    monkeypatch.setenv("RANK", rank)
    assert compose_config(return_hydra_config=True).hydra.output_subdir == expected


def test_per_rank_log_file(compose_config, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    cfg = compose_config(return_hydra_config=True)
    cfg.hydra.runtime.output_dir = "/r"
    assert cfg.hydra.job_logging.handlers.file.filename == "/r/train_rank1.log"
    assert os.environ["RANK"] == "1"


def test_experiment_switches_model_and_optimizer(compose_config, tmp_path):
    cfg = compose_config("experiment=conv1d_sgd", f"run_dir={tmp_path}")
    assert cfg.model._target_ == "workloads.classification.models.Conv1dNet"
    assert cfg.optim.optimizer._target_ == "torch.optim.SGD"
    assert Path(cfg.run_dir) == tmp_path


@pytest.mark.parametrize("override", ["trainer.max_step=5", "checkpoint.evry=3", "trainer.max_steps=many",
                                      "checkpoint.resume=perhaps"])
def test_trainer_and_checkpoint_typos_fail_at_composition(compose_config, override):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match=override.split("=")[0].split(".")[1]):
        compose_config(override)


def test_the_launcher_composes_with_the_same_schemas_without_importing_the_loop(tmp_path):
    """ft_launcher refuses a misspelt trainer key in one line, exit 2, before any worker starts."""
    import subprocess
    import sys
    from pathlib import Path

    launcher = str(Path(sys.executable).with_name("ft_launcher"))
    result = subprocess.run([launcher, "--standalone", "--nproc-per-node=1", "train.py", "trainer.max_step=5",
                             f"hydra.run.dir={tmp_path}"], cwd=CONF_DIR.parent, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "trainer.max_step" in result.stderr and "TrainerSchema" in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_several_loggers_at_once(compose_config, tmp_path):
    cfg = compose_config("logger=[jsonl,csv,tensorboard]", f"run_dir={tmp_path}")
    assert sorted(cfg.logger) == ["csv", "jsonl", "tensorboard"]


@pytest.mark.parametrize(("override", "key"), [
    ("trainer.grad_accum=0", "trainer.grad_accum"),
    ("trainer.clip_grad_norm=-1", "trainer.clip_grad_norm"),
    ("trainer.precision=fp8", "trainer.precision"),
])
def test_bad_step_settings_name_their_key(compose_config, tmp_path, override, key):
    with pytest.raises(train.TrainConfigError, match=key):
        train.run(compose_config(override, f"run_dir={tmp_path}", "trainer.progress=false"))


def test_old_validation_keys_are_refused_with_their_new_names(compose_config, tmp_path):
    with pytest.raises(train.TrainConfigError, match="renamed trainer.eval_every"):
        train.run(compose_config("trainer.val_every=5", f"run_dir={tmp_path}"))
