"""Health checks before an attempt, with real ft_launcher processes on the template: a checkpoint dir without
room or read-only, and a user check that raises, are refused before any worker starts, with exit 69."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ft_helpers.launches import FT_LAUNCHER

from ft import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NODE_CHECK = '''
def scratch_is_gone():
    raise RuntimeError("/scratch is not mounted")
'''


def launch(run_command, run_dir: Path, *overrides: str, env: dict | None = None) -> tuple[int, str]:
    argv = [*FT_LAUNCHER, "--standalone", "--nproc-per-node=1", "train.py", "trainer.max_steps=3",
            "trainer.progress=false", *overrides, f"hydra.run.dir={run_dir}"]
    return run_command(argv, env, timeout=90)


def assert_refused(code: int, out: str, run_dir: Path, check: str, found: str) -> None:
    assert code == ExitCode.NODE_UNHEALTHY, out
    assert f"is unhealthy: health check '{check}' failed: " in out and found in out, out
    assert "starting no worker here (exit 69)" in out and "0 attempt(s), exit code 69" in out, out
    assert "attempt 0 started" not in out and not (run_dir / "metrics.jsonl").exists(), "no worker may start"
    assert "Traceback" not in out, out


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(path, options)`` mounts a tmpfs there (as root); every mount is undone at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(path: Path, options: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True, timeout=30)
        mounted.append(path)
        return path

    try:
        yield mount
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", str(path)], check=False, timeout=30)


def test_a_checkpoint_dir_without_room_for_the_next_checkpoint_is_refused(run_command, tmp_path, tmpfs):
    run_dir = tmp_path / "run"
    checkpoints = tmpfs(run_dir / "checkpoints", "size=1m")
    # The newest checkpoint: 600 KiB; the next needs 1.5 times that, and 1 MiB holds less than 400 KiB more.
    (checkpoints / "step_00000010.0123456789abcdef.pt").write_bytes(b"\0" * 600 * 1024)
    code, out = launch(run_command, run_dir)
    assert_refused(code, out, run_dir, "checkpoint room", f"{checkpoints} has ")
    assert "the next checkpoint needs about 900.0 KiB" in out, out


def test_a_read_only_checkpoint_dir_is_refused(run_command, tmp_path, tmpfs):
    run_dir = tmp_path / "run"
    checkpoints = tmpfs(run_dir / "checkpoints", "size=1m,ro")
    code, out = launch(run_command, run_dir)
    assert_refused(code, out, run_dir, "checkpoint dir", f"{checkpoints} is not writable (Read-only file system)")


def test_a_user_check_that_raises_is_refused_and_names_the_node_for_the_batch_script(run_command, tmp_path):
    (tmp_path / "node_check.py").write_text(NODE_CHECK)
    run_dir, report = tmp_path / "run", tmp_path / "unhealthy-nodes"
    env = {"PYTHONPATH": str(tmp_path), "SLURMD_NODENAME": "node-7", "PULSETRAIN_UNHEALTHY_NODES_FILE": str(report)}
    code, out = launch(run_command, run_dir, "fault_tolerance.health_checks=[node_check.scratch_is_gone]", env=env)
    assert_refused(code, out, run_dir, "node_check.scratch_is_gone", "RuntimeError: /scratch is not mounted")
    assert "node node-7 is unhealthy" in out and report.read_text() == "node-7\n"


def test_a_user_check_that_cannot_be_imported_is_bad_input(run_command, tmp_path):
    run_dir = tmp_path / "run"
    code, out = launch(run_command, run_dir, "fault_tolerance.health_checks=[no_such_module.check]")
    assert code == ExitCode.USAGE_ERROR, out
    assert "'no_such_module.check' cannot be loaded (ModuleNotFoundError" in out, out
    assert not (run_dir / "metrics.jsonl").exists()


def test_passing_checks_start_the_job(run_command, tmp_path):
    (tmp_path / "node_check.py").write_text("def fine():\n    pass\n")
    run_dir = tmp_path / "run"
    code, out = launch(run_command, run_dir, "fault_tolerance.health_checks=[node_check:fine]",
                       env={"PYTHONPATH": str(tmp_path)})
    assert code == 0, out
