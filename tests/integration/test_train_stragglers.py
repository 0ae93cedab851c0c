"""Stragglers named by a real 2-rank ft_launcher job (gloo): a rank whose steps take 1.5x as long is named
within 100 steps, in the log and in metrics.jsonl; a clean run names no one."""

from __future__ import annotations

import json
import re

from ft_helpers.train_jobs import FAST_DETECTION, FT_LAUNCHER, launch

QUIET = [*FAST_DETECTION, "trainer.eval_every=0", "trainer.log_every=50"]
LINE = re.compile(r"straggler: rank (\d+) is ([\d.]+)x slower than the others .* at step (\d+)")


def _events(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("event") == "straggler"]


def test_a_rank_whose_steps_take_half_as_long_again_is_named_within_100_steps(tmp_path):
    code, out = launch(FT_LAUNCHER, tmp_path, *QUIET, "trainer.max_steps=100", "fault=slow", "fault.rank=1",
                       "fault.step=1", "fault.seconds=0", "fault.factor=1.5")
    assert code == 0, out[-3000:]
    named = [m.groups() for m in LINE.finditer(out)]
    assert named and {rank for rank, _, _ in named} == {"1"}, out[-3000:]  # rank 0 is never named
    rank, ratio, step = named[0]
    assert float(ratio) > 1.3 and int(step) <= 100
    (event,) = _events(tmp_path)
    assert event["rank"] == 1 and event["step"] == int(step) and event["ratio"] > 1.3 and event["windows"] == 3
    assert event["median_ms"] > event["others_median_ms"] > 0


def test_a_clean_run_names_no_straggler(tmp_path):
    code, out = launch(FT_LAUNCHER, tmp_path, *QUIET, "trainer.max_steps=300", timeout=120)
    assert code == 0, out[-3000:]
    assert not LINE.search(out) and _events(tmp_path) == []
