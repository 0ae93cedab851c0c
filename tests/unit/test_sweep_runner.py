"""The sweep runner's rules: what a point's record decides, exit codes, labels, metric lookup, plugin options."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ft import final_metrics
from launcher.job.outcome import Outcome
from launcher.sweeps import point as sweep_point
from launcher.sweeps.point import PointResult, SweepPoint
from launcher.sweeps.runner import exit_code, run_points
from launcher.sweeps.sweep import Sweep

ROOT = Path(__file__).resolve().parents[2]


def _point(tmp_path: Path, number: int, code: int, overrides: list[str] | None = None) -> SweepPoint:
    return SweepPoint(number, overrides or [f"x={number}"], tmp_path / str(number),
                      [sys.executable, "-c", f"import sys; sys.exit({code})"])


def test_points_run_once_and_a_relaunch_skips_the_finished_ones(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="launcher")
    points = [_point(tmp_path, 0, 0), _point(tmp_path, 1, 75), _point(tmp_path, 2, 1)]
    results, stopped = run_points(points, n_jobs=2)
    assert [r.outcome for r in results] == [Outcome.FINISHED, Outcome.STOPPED, Outcome.FAILED] and not stopped
    assert [sweep_point.read(p.run_dir)["status"] for p in points] == ["finished", "stopped", "failed"]
    assert exit_code(results) == 75
    points[0].command = [sys.executable, "-c", "raise SystemExit('must not run again')"]
    results, _ = run_points(points)
    assert results[0].outcome == Outcome.ALREADY_FINISHED and "already finished" in caplog.text
    assert results[0].started_at == sweep_point.read(points[0].run_dir)["started_at"]


def test_a_directory_holding_another_point_is_refused_without_running(tmp_path):
    run_points([_point(tmp_path, 0, 0, ["lr=1"])])
    results, _ = run_points([_point(tmp_path, 0, 0, ["lr=2"])])
    assert results[0].outcome == Outcome.BAD_INPUT and "holds the run of another point (lr=1)" in results[0].message
    assert sweep_point.read(tmp_path / "0")["overrides"] == ["lr=1"]


@pytest.mark.parametrize(("outcomes", "code"), [
    ([Outcome.FINISHED, Outcome.ALREADY_FINISHED], 0), ([Outcome.FINISHED, Outcome.FAILED], 1),
    ([Outcome.FAILED, Outcome.NOT_STARTED], 75), ([Outcome.BAD_INPUT], 1), ([Outcome.STOPPED], 75)])
def test_sweep_exit_code(tmp_path, outcomes, code):
    assert exit_code([PointResult(_point(tmp_path, 0, 0), o) for o in outcomes]) == code


def test_summary_names_points_by_their_values_and_reads_the_metric(tmp_path):
    point = SweepPoint(0, ["a=1", "lr=0.1", "hydra.job.chdir=false"], tmp_path / "0",
                       [sys.executable, "-c", "pass"], metric="val_loss", shown=["lr=0.1", "hydra.job.chdir=false"])
    assert point.label == "lr=0.1"
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / final_metrics.FILE_NAME).write_text(json.dumps({"step": 5, "val_loss": 0.5}))
    sweep = Sweep(tmp_path)
    sweep.run([point])
    (row,) = json.loads((tmp_path / "sweep_summary.json").read_text())["points"]
    assert row["point"] == "lr=0.1" and row["value"] == 0.5 and row["outcome"] == "finished"
    assert sweep.exit_code == 0


def test_metric_lookup_errors_say_what_is_missing(tmp_path):
    assert final_metrics.optimized_value(tmp_path, None) is None
    with pytest.raises(final_metrics.MetricNotFoundError, match="does not exist"):
        final_metrics.optimized_value(tmp_path, "val_loss")
    (tmp_path / final_metrics.FILE_NAME).write_text(json.dumps({"step": 5, "loss": 0.7}))
    with pytest.raises(final_metrics.MetricNotFoundError, match=r"eval_every.*logged: loss"):
        final_metrics.optimized_value(tmp_path, "val_loss")
    assert final_metrics.optimized_value(tmp_path, "loss") == 0.7


def test_plugin_is_found_in_the_namespace_package_and_checks_its_options():
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    from hydra_plugins.ft_launcher_plugin import commands
    from hydra_plugins.ft_launcher_plugin.config import FtLauncherConf

    assert not (ROOT / "hydra_plugins" / "__init__.py").exists()  # a namespace package, shared with other plugins
    assert "FtLauncher" in [p.__name__ for p in Plugins.instance().discover(Launcher)]
    options = OmegaConf.structured(FtLauncherConf)
    commands.check_options(options)
    options.ft = {"rank_heartbeat_timout": 3}
    with pytest.raises(commands.FtLauncherOptionError, match="hydra.launcher.ft.rank_heartbeat_timout"):
        commands.check_options(options)
    options.ft, options.n_jobs = {}, 0
    with pytest.raises(commands.FtLauncherOptionError, match="n_jobs"):
        commands.check_options(options)


def test_every_plugin_option_is_in_the_docs_with_its_default():
    from dataclasses import fields

    from hydra_plugins.ft_launcher_plugin.config import FtLauncherConf

    rows = [line for line in (ROOT / "docs" / "sweeps.md").read_text().splitlines() if line.startswith("| `")]
    for option in fields(FtLauncherConf):
        if option.name.startswith("_"):
            continue
        row = next((r for r in rows if f"`{option.name}`" in r.split("|")[1]), None)
        assert row is not None, f"docs/sweeps.md has no row for hydra.launcher.{option.name}"
        default = option.default_factory() if option.default_factory is not dataclasses.MISSING else option.default
        shown = ("null" if default is None else str(default).lower() if isinstance(default, bool)
                 else json.dumps(default) if isinstance(default, (dict, list)) else str(default))
        assert f"`{shown}`" in row or shown == "", (option.name, shown, row)


def test_summary_adds_up_every_launch_of_a_point_with_its_detections(tmp_path):
    from ft.monitor.events import RankEvent
    from launcher.job.record import JobRecord
    from launcher.records import launch_log
    from launcher.sweeps.summary import point_summary

    run_dir = tmp_path / "0"
    run_dir.mkdir()
    for code in (75, 0):  # stopped once, then relaunched to the end
        record = JobRecord("train", run_dir)
        record.begin(0, 2)
        record.current.outcome, record.current.cause = "failed", "heartbeat timeout on rank 1"
        record.note_detection(RankEvent("heartbeat_timeout", 1, 1, 123, 1.23456, 1.0, "override x=1"))
        record.begin(1, 2)
        record.exit_code, record.ended = code, record.started + 5
        launch_log.append(record)
    with (run_dir / launch_log.FILE_NAME).open("a") as f:
        f.write('{"half a line')  # a launch killed mid-write
    row = point_summary(PointResult(SweepPoint(0, ["x=1"], run_dir, []), Outcome.FINISHED, 0))
    assert row["launches"] == 2 and row["attempts"] == 4
    assert row["detections"] == [{"kind": "heartbeat_timeout", "rank": 1, "gap": 1.235, "timeout": 1.0,
                                  "timeout_source": "override x=1"}] * 2
    assert row["causes"] == ["heartbeat timeout on rank 1"] * 2 and row["time_lost"] >= 0
