"""The shared contracts: each exit code defined once, documented once, and acted on by the Slurm recipe."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ft import ExitCode, MetricEvent, Section
from ft.shared.contracts import exit_code_table

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_exit_code_table_is_the_contracts_table():
    text = (ROOT / "docs" / "reliability.md").read_text()
    assert exit_code_table() in text, "docs/reliability.md's exit-code table differs from exit_code_table(); paste it in"


def test_the_slurm_recipe_has_a_branch_for_every_exit_code_but_plain_failure():
    script = (ROOT / "examples" / "slurm" / "train.sbatch").read_text()
    branches = set(re.findall(r"^\s+(\d+)\)\s*$", script.split('case "$code" in', 1)[1], re.M))
    # FAILED falls to the script's catch-all branch (exit with the code, not requeued); every other code
    # needs a decision of its own.
    expected = {str(int(code)) for code in ExitCode if code is not ExitCode.FAILED}
    assert expected <= branches, f"train.sbatch has no branch for exit code(s) {sorted(expected - branches)}"


def test_every_exit_code_says_what_it_means_and_what_to_do():
    for code in ExitCode:
        assert code.meaning and code.action
    assert ExitCode.describe(75) == ExitCode.STOPPED_ON_REQUEST.meaning
    assert ExitCode.describe(137) == "ended"


def test_section_and_event_names_are_the_strings_on_the_wire_and_in_metrics_files():
    assert [s.value for s in Section] == ["init", "step", "checkpoint", "validation"]
    assert MetricEvent.CHECKPOINT == "checkpoint"
    assert f"{MetricEvent.ATTEMPT_START}" == str(MetricEvent.ATTEMPT_START) == "attempt_start"
    assert json.dumps({"event": MetricEvent.FAULT_INJECTED}) == '{"event": "fault_injected"}'
