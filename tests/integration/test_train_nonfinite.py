"""A diverged run (optim.optimizer.lr=1e6) stops with exit 93 and one line; its good checkpoints and JSON survive."""

from __future__ import annotations

import re

import torch
from ft_helpers.strict_json import strict_json
from ft_helpers.train_jobs import FAST_DETECTION, FT_LAUNCHER, final_checkpoint, launch


def test_a_diverging_relaunch_exits_93_and_keeps_the_last_good_checkpoint(tmp_path):
    good = ["checkpoint.every=5", "trainer.log_every=5"]
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "trainer.max_steps=10", *good)
    assert code == 0, out[-3000:]
    ckpt_dir = tmp_path / "checkpoints"
    before = {p.name: p.read_bytes() for p in ckpt_dir.glob("step_*.pt")}

    code, out = launch([*FT_LAUNCHER, "--max-restarts=2"], tmp_path, *FAST_DETECTION, "trainer.max_steps=60", *good,
                       "optim.optimizer.lr=1e6")
    assert code == 93, out[-3000:]
    lines = [line for line in out.splitlines() if re.search(r"non-finite (loss|gradient norm|weights) at step \d+", line)]
    assert len(lines) == 1, out[-3000:]  # rank 0 says it once; every rank stopped after the same step
    step = int(re.search(r"at step (\d+)", lines[0]).group(1))
    assert step > 10 and "attempt 1 started" not in out  # not restarted: it would only diverge again

    newest = final_checkpoint(tmp_path)
    assert newest["step"] < step and all(torch.isfinite(t).all() for t in newest["model"].values())
    after = {p.name: p.read_bytes() for p in ckpt_dir.glob("step_*.pt")}
    assert all(after[name] == data for name, data in before.items())  # no good checkpoint rotated out
    for path in after:
        state = torch.load(ckpt_dir / path, weights_only=True)
        assert all(torch.isfinite(t).all() for t in state["model"].values()), path

    records = [strict_json(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("loss", 0) is None for r in records)  # the non-finite loss is written as null
    final = tmp_path / "final_metrics.json"
    assert strict_json(final.read_text())["step"] == 10  # the first run's: the diverged one did not finish
