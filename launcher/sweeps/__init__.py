"""Sweeps: one fault-tolerant job per point, their records and summary; the face the Hydra plugin imports.

``hydra_plugins/ft_launcher_plugin`` uses the names below and no other part of ``launcher``.
"""

from launcher.job.outcome import Outcome
from launcher.planning.plan import quote
from launcher.sweeps.point import PointResult, SweepPoint, program_digest, shown_overrides
from launcher.sweeps.sweep import Sweep
from launcher.sweeps.task_program import task_program

__all__ = ["Outcome", "PointResult", "Sweep", "SweepPoint", "program_digest", "quote", "shown_overrides", "task_program"]
