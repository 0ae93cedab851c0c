"""What hang detection costs on a real GPU step: ``experiment=gpt_small`` on one CUDA rank, FT on and off."""

from __future__ import annotations

import pytest
from gpu_jobs import steps_per_s, train_job

pytestmark = [pytest.mark.cuda, pytest.mark.timeout(200)]

STEADY = ("experiment=gpt_small", "trainer.max_steps=1000", "trainer.log_every=100", "trainer.eval_every=0",
          "checkpoint.every=100000", "sample=null")


def test_ft_on_vs_off_steps_per_s_on_gpt_small(tmp_path, jobs, record):
    rates = {}
    for name, preset in (("ft_on", "fault_tolerance=default"), ("ft_off", "fault_tolerance=off")):
        run_dir = tmp_path / name
        code, out = train_job(jobs, run_dir, *STEADY, preset).finish(90)
        assert code == 0, out[-4000:]
        rates[name] = steps_per_s(out, run_dir)
    record(setup="1 rank on NCCL, 1000 steps each", ft_on_steps_per_s=rates["ft_on"],
           ft_off_steps_per_s=rates["ft_off"], on_over_off=round(rates["ft_on"] / rates["ft_off"], 4))
