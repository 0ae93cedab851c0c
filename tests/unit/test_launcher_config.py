"""Config discovery, composition, precedence with sources, sweeps and run directories."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from launcher.cli.args import UsageError
from launcher.planning import hydra_config, multirun
from launcher.planning.ft_settings import resolve
from launcher.planning.plan import quote

WORKERS = Path(__file__).resolve().parents[1] / "launcher_workers"


def _script(tmp_path: Path, decorator: str) -> Path:
    (tmp_path / "cfgs").mkdir()
    (tmp_path / "cfgs" / "main.yaml").write_text("a: 1\n")
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        import hydra
        {decorator}
        def main(cfg):
            pass
    """))
    return script


def test_split_script_args_separates_hydra_flags():
    split = hydra_config.split_script_args(["-cp", "c", "--config-name=n", "a=1", "-m", "+b=2"])
    assert split.overrides == ["a=1", "+b=2"]
    assert split.flags == {"--config-path": "c", "--config-name": "n", "--multirun": None}
    assert split.multirun


def test_locate_reads_hydra_main_literals(tmp_path):
    script = _script(tmp_path, '@hydra.main(version_base="1.2", config_path="cfgs", config_name="main")')
    location = hydra_config.locate(script, hydra_config.split_script_args([]))
    assert location.config_dir == tmp_path / "cfgs" and location.config_name == "main"
    assert location.version_base == "1.2"


def test_command_line_config_path_wins(tmp_path):
    script = _script(tmp_path, '@hydra.main(config_path="nowhere", config_name="x")')
    location = hydra_config.locate(script, hydra_config.split_script_args(["-cp", "cfgs", "-cn", "main"]))
    assert location.config_dir == tmp_path / "cfgs" and location.config_name == "main"


def test_unreadable_decorator_falls_back_to_conf_beside_the_script(tmp_path):
    script = _script(tmp_path, "@hydra.main(config_path=CONF, config_name=NAME)")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.yaml").write_text("b: 2\n")
    location = hydra_config.locate(script, hydra_config.split_script_args([]))
    assert location.config_dir == tmp_path / "conf" and location.config_name == "app"


def test_plain_script_is_not_a_hydra_app():
    assert hydra_config.locate(WORKERS / "plain_worker.py", hydra_config.split_script_args([])) is None


def test_missing_config_dir_is_a_usage_error(tmp_path):
    script = _script(tmp_path, '@hydra.main(config_path="gone", config_name="main")')
    with pytest.raises(UsageError, match="config directory not found"):
        hydra_config.locate(script, hydra_config.split_script_args([]))


def _compose(overrides):
    location = hydra_config.locate(WORKERS / "hydra_worker.py", hydra_config.split_script_args(overrides))
    return hydra_config.compose(location, overrides, "hydra_worker")


def test_precedence_and_sources(tmp_path):
    overrides = ["fault_tolerance.rank_heartbeat_timeout=7", "fault_tolerance.safety_factor=3"]
    cfg = _compose(overrides)
    yaml_file = tmp_path / "ft.yaml"
    yaml_file.write_text("fault_tolerance:\n  safety_factor: 4\n  rank_termination_grace: 0.5\n")
    settings = resolve(cfg.fault_tolerance, overrides, "conf/fault_tolerance/default.yaml", str(yaml_file),
                       {"rank_termination_grace": "0.2"}, {"rank_termination_grace": "--ft-rank-termination-grace"})
    config = settings.config
    assert config.rank_heartbeat_timeout == 7 and config.safety_factor == 4 and config.rank_termination_grace == 0.2
    assert config.initial_rank_heartbeat_timeout == 30  # from the YAML of the test worker's conf
    assert settings.sources["rank_heartbeat_timeout"] == "override fault_tolerance.rank_heartbeat_timeout=7"
    assert settings.sources["safety_factor"] == f"--ft-cfg-path {yaml_file}"
    assert settings.sources["rank_termination_grace"] == "--ft-rank-termination-grace"
    assert settings.sources["calibrate"] == "conf/fault_tolerance/default.yaml"
    assert settings.worker_overrides == ["fault_tolerance.safety_factor=4.0",
                                         "fault_tolerance.rank_termination_grace=0.2"]


def test_flags_only_without_hydra_and_null_timeouts():
    settings = resolve(None, [], None, None, {"rank_heartbeat_timeout": "null"}, {})
    assert settings.config.rank_heartbeat_timeout is None
    assert settings.worker_overrides == [] and settings.sources["safety_factor"] == "default"


def test_bad_flag_value_is_a_usage_error():
    with pytest.raises(UsageError, match="rank_heartbeat_timeout"):
        resolve(None, [], None, None, {"rank_heartbeat_timeout": "0"}, {})


def test_composition_errors_are_usage_errors():
    with pytest.raises(UsageError, match="cannot compose"):
        _compose(["fault_tolerance.no_such_key=1"])


def test_run_dir_is_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("LAUNCHER_TEST_OUT", "rel")
    cfg = _compose([])
    assert hydra_config.resolve_dir(cfg, "run.dir", tmp_path) == tmp_path / "rel" / "run"


def test_sweep_expansion_follows_basic_sweeper():
    overrides = ["fault.steps=1,2", "+fault.hang=0@0", "fault_tolerance.safety_factor=2,3"]
    cfg = _compose(multirun.non_sweep(overrides))
    jobs = multirun.expand(overrides, cfg)
    assert len(jobs) == 4
    assert jobs[0] == ["fault.steps=1", "+fault.hang=0@0", "fault_tolerance.safety_factor=2"]
    assert jobs[3] == ["fault.steps=2", "+fault.hang=0@0", "fault_tolerance.safety_factor=3"]


def test_override_values_are_quoted_when_needed():
    assert quote("/tmp/run-1/x_y.z") == "/tmp/run-1/x_y.z"
    assert quote("/tmp/a b") == "'/tmp/a b'"
    assert quote("/tmp/it's") == "'/tmp/it\\'s'"


def test_config_dir_flag_adds_a_search_path(tmp_path, monkeypatch):
    from launcher.cli.args import parse
    from launcher.planning.plan import plan_jobs

    extra = tmp_path / "extra" / "fault_tolerance"
    extra.mkdir(parents=True)
    (extra / "fast.yaml").write_text("defaults:\n  - default\n  - _self_\nrank_heartbeat_timeout: 3.0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAUNCHER_TEST_OUT", str(tmp_path))
    [plan] = plan_jobs(parse([str(WORKERS / "hydra_worker.py"), "-cd", "extra", "fault_tolerance=fast"]))
    assert plan.settings.config.rank_heartbeat_timeout == 3.0
    assert plan.settings.sources["rank_heartbeat_timeout"] == "extra/fault_tolerance/fast.yaml"  # relative to cwd
    assert plan.script_args[0] == "--config-dir=extra" and plan.run_dir == tmp_path / "run"
