"""The health checks' pieces: the newest checkpoint's size, user-check import paths, the config key."""

from __future__ import annotations

import os

import pytest

from ft.shared.config import FaultToleranceConfig, FaultToleranceConfigError
from launcher.health import HealthChecksUnusable, NodeHealth, NodeUnhealthy
from launcher.health.problems import CheckFailed
from launcher.health.storage import check_checkpoint_room, check_writable, newest_checkpoint_bytes
from launcher.health.user_checks import load


def test_the_newest_checkpoint_is_the_newest_file_and_temporaries_do_not_count(tmp_path):
    assert newest_checkpoint_bytes(tmp_path / "missing") == 0
    (tmp_path / "step_00000001.aa.pt").write_bytes(b"x" * 10)
    newer = tmp_path / "step_00000002.bb.pt"
    newer.write_bytes(b"x" * 30)
    os.utime(newer, (2e9, 2e9))
    (tmp_path / ".step_00000003.tmp.1").write_bytes(b"x" * 999)
    assert newest_checkpoint_bytes(tmp_path) == 30


def test_room_is_asked_only_once_there_is_a_checkpoint(tmp_path):
    check_checkpoint_room("checkpoint room", tmp_path)  # none yet: nothing to ask
    check_writable("run dir", tmp_path / "made" / "here")
    assert (tmp_path / "made" / "here").is_dir() and not any((tmp_path / "made" / "here").iterdir())


@pytest.mark.parametrize("path", ["os.path:exists", "os.path.exists"])
def test_both_import_path_forms_load(path):
    assert load(path) is os.path.exists


def test_a_user_check_is_found_beside_the_script_and_its_error_becomes_the_failure(tmp_path, caplog):
    (tmp_path / "beside_script_check.py").write_text("def bad():\n    raise OSError('no /scratch')\n")
    health = NodeHealth(None, None, None, ["beside_script_check:bad"], None, [tmp_path])
    with pytest.raises(NodeUnhealthy, match=r"'beside_script_check:bad' failed: OSError: no /scratch"):
        health.check()
    assert "starting no worker here (exit 69)" in caplog.text


def test_an_entry_that_names_nothing_callable_is_bad_input(tmp_path):
    for path in ("os.path:sep", "no_such_module_x:f", "os.path:nothing"):
        with pytest.raises(HealthChecksUnusable, match="fault_tolerance.health_checks"):
            NodeHealth(None, None, None, [path], None, [tmp_path])


def test_the_key_takes_a_list_or_a_flag_string_and_refuses_what_is_not_an_import_path():
    assert FaultToleranceConfig().health_checks == []
    assert FaultToleranceConfig.from_mapping({"health_checks": ["a.b:c"]}).health_checks == ["a.b:c"]
    assert FaultToleranceConfig().with_changes({"health_checks": "a.b:c, d.e"}).health_checks == ["a.b:c", "d.e"]
    for bad in (["not a path"], 3, [1]):
        with pytest.raises(FaultToleranceConfigError, match="fault_tolerance.health_checks"):
            FaultToleranceConfig.from_mapping({"health_checks": bad})


def test_a_failed_check_says_what_it_found_and_what_to_do():
    failed = CheckFailed("gpus", "CUDA sees no GPU", "check the driver")
    assert str(failed) == "health check 'gpus' failed: CUDA sees no GPU; check the driver"
