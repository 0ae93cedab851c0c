"""The fault_tolerance schema: defaults, null, validation, YAML and --ft-* loading, precedence."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from ft import FaultToleranceConfig, FaultToleranceConfigError, register_configs
from ft.shared.config import FIELD_NAMES
from ft.shared.config_sources import load_yaml_section, parse_cli_values

ROOT = Path(__file__).resolve().parents[2]


def compose_ft(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides)).fault_tolerance


def test_defaults_match_the_documented_values():
    cfg = FaultToleranceConfig()
    assert cfg.initial_rank_heartbeat_timeout == 3600.0
    assert cfg.rank_heartbeat_timeout == 2700.0
    assert cfg.safety_factor == 5.0
    assert 0 < cfg.workload_check_interval <= 1.0
    assert cfg.rank_termination_signal == "SIGKILL"


def test_composed_default_group_equals_schema_defaults():
    composed = FaultToleranceConfig.from_mapping(compose_ft())
    # The YAML lists the template loop's sections, without timeouts, so overrides can set them.
    listed = dict.fromkeys(["init", "step", "checkpoint", "validation"])
    assert composed == FaultToleranceConfig(rank_section_timeouts=listed)


def test_null_means_infinite():
    cfg = FaultToleranceConfig.from_mapping(compose_ft("fault_tolerance.rank_heartbeat_timeout=null"))
    assert cfg.rank_heartbeat_timeout is None
    assert cfg.initial_rank_heartbeat_timeout == 3600.0


def test_calibrate_preset_starts_without_timeouts():
    cfg = FaultToleranceConfig.from_mapping(compose_ft("fault_tolerance=calibrate"))
    assert cfg.calibrate is True
    assert cfg.initial_rank_heartbeat_timeout is None and cfg.rank_heartbeat_timeout is None


def test_typo_in_key_rejected_at_composition():
    with pytest.raises(ConfigCompositionException, match="rank_heartbeat_timout"):
        compose_ft("fault_tolerance.rank_heartbeat_timout=5")


def test_non_number_rejected_at_composition():
    with pytest.raises((ConfigCompositionException, ValidationError), match="abc"):
        compose_ft("fault_tolerance.rank_heartbeat_timeout=abc")


@pytest.mark.parametrize("bad", [-3, 0, float("nan")])
def test_non_positive_timeout_rejected_naming_the_key(bad):
    with pytest.raises(FaultToleranceConfigError, match=r"fault_tolerance\.rank_heartbeat_timeout"):
        FaultToleranceConfig.from_mapping({"rank_heartbeat_timeout": bad})


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        ("workload_check_interval", None, "workload_check_interval"),
        ("workload_check_interval", 0, "workload_check_interval"),
        ("safety_factor", 0.5, "safety_factor"),
        ("rank_termination_signal", "SIGNOPE", "SIGNOPE"),
        ("calibration_steps", 0, "calibration_steps"),
        ("initial_rank_heartbeat_timeout", "soon", "soon"),
    ],
)
def test_bad_values_rejected(key, value, pattern):
    with pytest.raises(FaultToleranceConfigError, match=pattern):
        FaultToleranceConfig.from_mapping({key: value})


def test_unknown_key_rejected_with_suggestion():
    with pytest.raises(FaultToleranceConfigError, match="did you mean 'rank_heartbeat_timeout'"):
        FaultToleranceConfig.from_mapping({"rank_heartbeat_timout": 5})


def test_signal_names_are_normalised():
    assert FaultToleranceConfig.from_mapping({"rank_termination_signal": "term"}).rank_termination_signal == "SIGTERM"


def test_yaml_section_found_at_top_level_and_nested(tmp_path):
    top = tmp_path / "top.yaml"
    top.write_text("fault_tolerance:\n  rank_heartbeat_timeout: 12\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("job:\n  settings:\n    fault_tolerance:\n      initial_rank_heartbeat_timeout: null\n")
    assert load_yaml_section(top) == {"rank_heartbeat_timeout": 12}
    assert load_yaml_section(nested) == {"initial_rank_heartbeat_timeout": None}


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("other: 1\n", "no 'fault_tolerance:' section"),
        ("fault_tolerance:\n  rank_heartbeat_timeout: -1\n", r"rank_heartbeat_timeout.*> 0"),
        ("fault_tolerance:\n  bogus: 1\n", "bogus"),
        ("fault_tolerance: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_yaml_files_rejected(tmp_path, text, pattern):
    path = tmp_path / "ft.yaml"
    path.write_text(text)
    with pytest.raises(FaultToleranceConfigError, match=pattern):
        load_yaml_section(path)


def test_missing_yaml_file_named():
    with pytest.raises(FaultToleranceConfigError, match="file not found"):
        load_yaml_section("/nonexistent/ft.yaml")


@pytest.mark.parametrize("word", ["null", "None", "", "inf"])
def test_cli_strings_for_infinite(word):
    assert parse_cli_values({"rank_heartbeat_timeout": word}) == {"rank_heartbeat_timeout": None}


def test_cli_strings_typed():
    parsed = parse_cli_values(
        {"rank_heartbeat_timeout": "30", "calibrate": "true", "calibration_steps": "7", "safety_factor": "2.5"}
    )
    assert parsed == {"rank_heartbeat_timeout": 30.0, "calibrate": True, "calibration_steps": 7, "safety_factor": 2.5}


@pytest.mark.parametrize(("values", "pattern"), [({"rank_heartbeat_timeout": "abc"}, "abc"), ({"rank_heartbeat_timeout": "-3"}, "> 0")])
def test_cli_strings_rejected(values, pattern):
    with pytest.raises(FaultToleranceConfigError, match=pattern):
        parse_cli_values(values)


def test_precedence_conf_then_override_then_yaml_then_flag(tmp_path):
    yaml_file = tmp_path / "ft.yaml"
    yaml_file.write_text("fault_tolerance:\n  rank_heartbeat_timeout: 20\n  safety_factor: 3\n")
    composed = compose_ft("fault_tolerance.rank_heartbeat_timeout=10", "fault_tolerance.initial_rank_heartbeat_timeout=99")
    cfg = FaultToleranceConfig.from_mapping(composed)
    assert (cfg.rank_heartbeat_timeout, cfg.initial_rank_heartbeat_timeout) == (10.0, 99.0)
    cfg = cfg.with_changes(load_yaml_section(yaml_file))
    assert (cfg.rank_heartbeat_timeout, cfg.safety_factor, cfg.initial_rank_heartbeat_timeout) == (20.0, 3.0, 99.0)
    cfg = cfg.with_changes(parse_cli_values({"rank_heartbeat_timeout": "30"}))
    assert (cfg.rank_heartbeat_timeout, cfg.safety_factor, cfg.initial_rank_heartbeat_timeout) == (30.0, 3.0, 99.0)


def test_config_round_trips_through_dict():
    cfg = FaultToleranceConfig(rank_heartbeat_timeout=None, safety_factor=2.0)
    assert FaultToleranceConfig.from_mapping(cfg.to_dict()) == cfg


def test_train_py_reports_bad_timeout_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "fault_tolerance.rank_heartbeat_timeout=-1", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in (result.stderr + result.stdout).splitlines() if "rank_heartbeat_timeout" in line]
    assert len(lines) == 1 and "must be > 0" in lines[0]


def test_inf_means_null_in_yaml_overrides_flags_and_the_constructor(tmp_path):
    yaml_file = tmp_path / "ft.yaml"
    yaml_file.write_text("fault_tolerance:\n  rank_heartbeat_timeout: .inf\n")
    from_yaml = FaultToleranceConfig().with_changes(load_yaml_section(yaml_file))
    from_override = FaultToleranceConfig.from_mapping(compose_ft("fault_tolerance.rank_heartbeat_timeout=inf"))
    from_flag = FaultToleranceConfig().with_changes(parse_cli_values({"rank_heartbeat_timeout": "inf"}))
    direct = FaultToleranceConfig(initial_rank_heartbeat_timeout=float("inf"))
    for cfg in (from_yaml, from_override, from_flag):
        assert cfg.rank_heartbeat_timeout is None and cfg.initial_rank_heartbeat_timeout == 3600.0
    assert direct.initial_rank_heartbeat_timeout is None
    assert from_override.to_dict()["rank_heartbeat_timeout"] is None  # JSON can carry it to the workers


def test_minus_inf_is_refused():
    with pytest.raises(FaultToleranceConfigError, match=r"rank_heartbeat_timeout: must be > 0 seconds, got -inf"):
        FaultToleranceConfig.from_mapping({"rank_heartbeat_timeout": float("-inf")})


def test_a_template_section_timeout_is_set_with_an_override():
    cfg = FaultToleranceConfig.from_mapping(compose_ft("fault_tolerance.rank_section_timeouts.checkpoint=600",
                                                       "+fault_tolerance.rank_section_timeouts.mine=inf"))
    assert cfg.rank_section_timeouts == {"init": None, "step": None, "checkpoint": 600.0, "validation": None,
                                         "mine": None}


def test_the_docs_key_table_is_the_schema():
    from ft.shared.config import settings_table

    text = (ROOT / "docs" / "configuration.md").read_text()
    table = settings_table()
    assert table in text, "docs/configuration.md's key table differs from ft.config.settings_table(); paste it in"
    documented = set(re.findall(r"^\| `(\w+)` \| `", text.split("## Keys", 1)[1].split("\n\n#", 1)[0], re.M))
    assert documented == set(FIELD_NAMES)


def test_every_key_has_help_a_unit_rule_and_a_default_that_passes_its_own_rule():
    from ft.shared.config import DEFAULTS, SETTINGS, validate

    validate(DEFAULTS)
    for key, described in SETTINGS.items():
        assert described.help and described.doc and described.metavar, key


def test_the_default_preset_repeats_no_schema_default():
    text = (ROOT / "conf" / "fault_tolerance" / "default.yaml").read_text()
    assert [key for key in FIELD_NAMES if re.search(rf"^{key}:", text, re.M)] == ["rank_section_timeouts"]
