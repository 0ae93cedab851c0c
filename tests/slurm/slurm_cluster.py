"""Helpers for the Slurm tests: submit examples/slurm/train.sbatch to the cluster of scripts/slurm-up and
watch its jobs through scontrol, their output files and their run directories."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from train.checkpoint.store import CheckpointStore

REPO = Path(__file__).resolve().parents[2]
SBATCH_FILE = REPO / "examples" / "slurm" / "train.sbatch"
FT_LAUNCHER = Path(sys.executable).parent / "ft_launcher"


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.1):
    """Poll ``predicate`` until it returns something true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@dataclass
class Job:
    """One submitted job (or array element): its id, output file and run directory."""

    cluster: SlurmCluster
    id: str
    output: Path
    run_dir: Path

    def info(self) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, Restarts, ExitCode, ...); {} once forgotten."""
        out = self.cluster.run(["scontrol", "show", "job", "-o", self.id], check=False).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def state(self) -> str:
        return self.info().get("JobState", "")

    def wait_ended(self, timeout: float) -> dict[str, str]:
        info = wait_for(lambda: (i := self.info()) and i.get("JobState") in ENDED and i, timeout,
                        f"job {self.id} to end ({self.describe()})", every=0.25)
        return info

    def log(self) -> str:
        return self.output.read_text() if self.output.exists() else ""

    def metrics(self) -> list[dict]:
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def wait_for_step(self, step: int, timeout: float) -> None:
        wait_for(lambda: any(m.get("step", 0) >= step for m in self.metrics()), timeout,
                 f"job {self.id} to log step {step} ({self.describe()})", every=0.1)

    def final_state(self) -> dict:
        newest = CheckpointStore(self.run_dir / "checkpoints").checkpoints()[-1]
        return torch.load(newest.path, weights_only=True)

    def describe(self) -> str:
        info = self.info()
        return (f"state {info.get('JobState')} ({info.get('Reason')}), restarts {info.get('Restarts')}; "
                f"log tail:\n{self.log()[-3000:]}\n{self.cluster.describe(self.id)}")


ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
         "PREEMPTED"}


class SlurmCluster:
    """The cluster made by scripts/slurm-up; ``submit`` runs sbatch on examples/slurm/train.sbatch."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.dir = directory
        self.env = env

    def run(self, cmd: list[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def submit(self, out_dir: Path, overrides: list[str], sbatch_args: list[str] = (),
               env: dict[str, str] | None = None) -> str:
        """Submit the example sbatch file itself; returns the job id (array: the array job id)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        exports = {"OUTPUTS": str(out_dir), "FT_LAUNCHER": str(FT_LAUNCHER), **(env or {})}
        # An array element's output is named <array id>_<index>, as Job expects (%j would be its own id).
        name = "%A_%a" if any(a.startswith("--array") for a in sbatch_args) else "%j"
        sbatch = shutil.which("sbatch", path=self.env["PATH"]) or "sbatch"  # PATH may be the job's own
        cmd = [sbatch, "--parsable", f"--output={out_dir}/slurm-{name}.out", *sbatch_args,
               str(SBATCH_FILE), *overrides]
        proc = subprocess.run(cmd, env={**self.env, **exports}, cwd=REPO, capture_output=True, text=True,
                              timeout=30)
        if proc.returncode != 0:
            pytest.fail(f"sbatch failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def job(self, job_id: str, out_dir: Path) -> Job:
        """A job (``123``) or array element (``123_0``) submitted with ``out_dir``."""
        return Job(self, job_id, out_dir / f"slurm-{job_id}.out", out_dir / f"slurm-{job_id}")

    def describe(self, job_id: str | None = None) -> str:
        """The queue, the nodes and (with ``job_id``) the job as Slurm sees them: why a job waits."""
        commands = [["squeue", "-o", "%i %T %r %C %D %N %l %Q"], ["sinfo", "-N", "-l"]]
        if job_id:
            commands.append(["scontrol", "show", "job", job_id])
        parts = []
        for cmd in commands:
            try:
                proc = self.run(cmd, check=False, timeout=10)
                parts.append(f"$ {' '.join(cmd)}\n{proc.stdout.strip()}{proc.stderr.strip()}")
            except subprocess.TimeoutExpired:
                parts.append(f"$ {' '.join(cmd)}: timed out")
        return "\n".join(parts)

    def cancel_all(self) -> None:
        self.run(["scancel", "--partition=debug"], check=False)
