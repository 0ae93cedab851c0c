"""The fork server preloads torch._dynamo, so its workers must never free a gloo group from the DDP Reducer.

Why (docs/launcher.md, "Fork server"): a Reducer that frees the group holds the GIL while gloo's
run-loop threads are joined, and one of them may need that GIL; with dynamo imported before the
group existed, that deadlocked 1 in ~4 launches. A forked worker keeps every group it destroyed
referenced until it exits with os._exit, so no join happens at all. Plain processes (torchrun's
way) are left as they are, which the second case shows. How often launches hang is measured by
benchmarks/teardown.py (a race cannot be tested into a deterministic failure).
"""

from __future__ import annotations

import json

import pytest
from ft_helpers.launches import WORKERS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
WORKER = str(WORKERS / "teardown_worker.py")


def _reports(out) -> list[dict]:
    return [json.loads((out / f"teardown.r{rank}.json").read_text()) for rank in range(2)]


def test_a_forked_worker_has_dynamo_preloaded_and_keeps_the_group_it_destroyed(launches, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code, err = launches.run(["--standalone", "--nproc-per-node=2", WORKER, f"out={out}"], timeout=90)
    assert code == 0, err
    for report in _reports(out):
        assert report["dynamo_preloaded"], "the fork server imports torch._dynamo before forking"
        # Kept until os._exit: the Reducer was never the group's last owner, so it joined nothing.
        assert report["kept"]
        assert report["agent_store"] == "True", "a one-node job's launcher hosts the workers' store"


def test_a_plain_worker_frees_its_group_as_usual(launches, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code, err = launches.run(["--standalone", "--nproc-per-node=2", "--no-fork-server", WORKER, f"out={out}"],
                             timeout=90)
    assert code == 0, err
    for report in _reports(out):
        assert not report["dynamo_preloaded"]
        assert not report["keeper_loaded"] and not report["kept"], "a plain process is left as torchrun leaves it"
        assert report["agent_store"] == "True"
