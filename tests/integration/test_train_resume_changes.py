"""A relaunch with a changed config does what it says: a longer max_steps and a new lr are applied, one line says so."""

from __future__ import annotations

import math

from ft_helpers.train_jobs import FAST_DETECTION, FT_LAUNCHER, final_checkpoint, launch, metrics


def test_a_longer_run_with_a_new_lr_follows_the_new_schedule_without_climbing_back(tmp_path):
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "trainer.max_steps=100")
    assert code == 0, out[-3000:]
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "trainer.max_steps=200", "optim.optimizer.lr=0.1")
    assert code == 0, out[-3000:]

    line = next(line for line in out.splitlines() if "resume: kept from the checkpoint" in line)
    assert "step 100" in line and "optim.optimizer.lr 0.003 -> 0.1" in line
    assert "optim.scheduler.T_max 100 -> 200" in line and "trainer.max_steps 100 -> 200" in line
    lrs = {m["step"]: m["lr"] for m in metrics(tmp_path) if "lr" in m and m["step"] > 100}
    assert sorted(lrs) == list(range(110, 201, 10))
    for step, lr in lrs.items():  # the new config's cosine (T_max=200, peak 0.1) at that step, as if run so from 0
        assert math.isclose(lr, 0.1 * (1 + math.cos(math.pi * step / 200)) / 2, rel_tol=1e-6, abs_tol=1e-12), step
    values = list(lrs.values())
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # never climbs back
    assert final_checkpoint(tmp_path)["step"] == 200


def test_an_unchanged_relaunch_says_everything_was_kept(tmp_path):
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "trainer.max_steps=20", "checkpoint.every=10")
    assert code == 0, out[-3000:]
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "trainer.max_steps=20", "checkpoint.every=10")
    assert code == 0, out[-3000:]
    assert "the new config's optim and trainer.max_steps are the same" in out


def test_another_optimizer_class_is_refused_naming_the_key_and_both_classes(tmp_path):
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "trainer.max_steps=20", "checkpoint.every=10")
    assert code == 0, out[-3000:]
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    code, out = launch(FT_LAUNCHER, tmp_path, *FAST_DETECTION, "trainer.max_steps=40", "checkpoint.every=10",
                       "optim=sgd")
    assert code == 2, out[-3000:]
    assert "optim.optimizer._target_: the checkpoint was trained with torch.optim.AdamW, this run has " \
           "torch.optim.SGD" in out
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
