"""``final_metrics.json``: what a finished run leaves for a sweeper, and the value it optimises.

The contract between the training loop (rank 0 writes the file at the end of a finished run, in
one rename) and whoever reads a run's result: ``train.py`` returning it to Hydra, the launcher's
sweep summary, the ``hydra/launcher=ft`` plugin. Like ``ft.shared.contracts``, it sits in ``ft`` because
both ``train`` and ``launcher`` need it and neither may import the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE_NAME = "final_metrics.json"


class MetricNotFoundError(Exception):
    """The optimised metric cannot be read: no file (the run did not finish) or no such key."""


def read(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's final metrics, or None when the run has not finished (no file yet)."""
    path = Path(run_dir) / FILE_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise MetricNotFoundError(f"{path}: unreadable ({exc})") from None


def optimized_value(run_dir: str | Path, name: str | None) -> float | None:
    """The value of metric ``name`` at the end of the run; None when ``name`` is None (nothing to optimise)."""
    if name is None:
        return None
    values = read(run_dir)
    if values is None:
        raise MetricNotFoundError(f"trainer.optimized_metric={name}: {Path(run_dir) / FILE_NAME} does not exist "
                                  "(the run did not finish)")
    if name not in values:
        known = ", ".join(sorted(k for k in values if k != "step")) or "none"
        hint = " (is trainer.eval_every > 0?)" if name.startswith("val_") else ""
        raise MetricNotFoundError(f"trainer.optimized_metric={name}: the run logged no such metric{hint}; "
                                  f"logged: {known}")
    return float(values[name])
