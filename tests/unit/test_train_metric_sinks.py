"""Metrics sinks (logger=): each reads back what was logged; several at once; restarts append; rank-0-only logging."""

from __future__ import annotations

import csv
import json
import logging

import pytest
from omegaconf import OmegaConf

from train.metrics.ranked_logging import RankedLogger
from train.metrics.sinks import CsvSink, JsonlSink, build_sinks


def test_jsonl_and_csv_append_across_attempts(tmp_path):
    for attempt, step in ((0, 10), (1, 20)):
        for sink in (JsonlSink(tmp_path, attempt), CsvSink(tmp_path, attempt)):
            sink.log({"loss": 0.5 + attempt}, step)
            sink.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["attempt"], m["loss"]) for m in lines] == [(10, 0, 0.5), (20, 1, 1.5)]
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(r["step"], r["attempt"], r["name"], r["value"]) for r in rows] == [
        ("10", "0", "loss", "0.5"), ("20", "1", "loss", "1.5")]


def test_several_sinks_from_the_config_and_tensorboard_reads_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = OmegaConf.create({name: OmegaConf.load(f"conf/logger/{name}.yaml")[name]
                            for name in ("jsonl", "csv", "tensorboard")})
    sinks = build_sinks(cfg, tmp_path, attempt=0, start_step=0)
    for step in (1, 2, 3):
        sinks.log({"loss": 1.0 / step}, step)
    sinks.log({"event": "checkpoint"}, 3)
    sinks.close()
    assert sinks.last == {"loss": pytest.approx(1 / 3)}
    board = EventAccumulator(str(tmp_path / "tensorboard"))
    board.Reload()
    scalars = board.Scalars("loss")
    assert [e.step for e in scalars] == [1, 2, 3]
    assert [e.value for e in scalars] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [e.step for e in board.Scalars("events/checkpoint")] == [3]
    assert (tmp_path / "metrics.csv").exists() and (tmp_path / "metrics.jsonl").exists()


def test_a_target_that_is_not_a_sink_is_a_config_error(tmp_path):
    import train

    with pytest.raises(train.TrainConfigError, match="logger.bogus"):
        build_sinks(OmegaConf.create({"bogus": {"_target_": "builtins.dict"}}), tmp_path, 0, 0)


def test_ranked_logger_speaks_on_rank_zero_only(monkeypatch, caplog):
    log = RankedLogger("test.ranked", rank_zero_only=True)
    with caplog.at_level(logging.INFO, logger="test.ranked"):
        monkeypatch.setenv("RANK", "1")
        log.info("from rank %d", 1)
        monkeypatch.setenv("RANK", "0")
        log.info("from rank %d", 0)
        RankedLogger("test.ranked").info("everyone", rank=1)
    assert [r.getMessage() for r in caplog.records] == ["from rank 0"]


def test_a_new_sink_is_one_class_and_one_yaml(compose_config, tmp_path, monkeypatch):
    """A sink defined outside train/, selected with logger=[jsonl,<name>] from a config dir on the search path."""
    (tmp_path / "my_sinks.py").write_text(
        "from train.metrics.sinks import MetricsSink\n"
        "class LinesSink(MetricsSink):\n"
        "    def __init__(self, run_dir, attempt=0, start_step=0, filename='lines.txt'):\n"
        "        super().__init__(run_dir, attempt, start_step)\n"
        "        self.file = (self.run_dir / filename).open('a')\n"
        "    def log(self, metrics, step):\n"
        "        self.file.write(f'{step} {sorted(metrics.items())}\\n')\n"
        "    def close(self):\n"
        "        self.file.close()\n")
    (tmp_path / "conf" / "logger").mkdir(parents=True)
    (tmp_path / "conf" / "logger" / "lines.yaml").write_text(
        "lines:\n  _target_: my_sinks.LinesSink\n  filename: lines.txt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = compose_config(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "logger=[jsonl,lines]",
                         f"run_dir={run_dir}")
    sinks = build_sinks(cfg.logger, run_dir, attempt=0, start_step=0)
    sinks.log({"loss": 0.25}, 7)
    sinks.close()
    assert (run_dir / "lines.txt").read_text() == "7 [('loss', 0.25)]\n"
    assert json.loads((run_dir / "metrics.jsonl").read_text())["loss"] == 0.25
