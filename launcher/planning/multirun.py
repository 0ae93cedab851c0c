"""Expand ``-m`` sweeps with Hydra's own override parser and BasicSweeper semantics.

Every sweep point becomes one fault-tolerant job, run one after the other, each with its own
run directory ``<hydra.sweep.dir>/<hydra.sweep.subdir>``; a failed point does not stop the rest.
"""

from __future__ import annotations

from typing import Any

from launcher.cli.args import UsageError
from launcher.planning.hydra_config import one_line


def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def non_sweep(overrides: list[str]) -> list[str]:
    """The overrides that name one value (to compose the config the sweep starts from)."""
    try:
        parsed = _parser().parse_overrides(overrides)
    except Exception as exc:
        raise UsageError(f"bad override: {one_line(exc)}") from None
    return [text for text, item in zip(overrides, parsed, strict=True) if not item.is_sweep_override()]


def expand(overrides: list[str], base_cfg: Any) -> list[list[str]]:
    """One override list per sweep point, in Hydra's order (``hydra.sweeper.params`` first)."""
    from omegaconf import OmegaConf

    from launcher.compat import split_sweep

    params = OmegaConf.select(base_cfg, "hydra.sweeper.params", default=None) or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + list(overrides)
    try:
        batches = split_sweep(_parser().parse_overrides(arguments))
    except Exception as exc:
        raise UsageError(f"cannot expand the sweep: {one_line(exc)}") from None
    return [job for batch in batches for job in batch]


def override_dirname(overrides: list[str]) -> str:
    """Like Hydra's ``hydra.job.override_dirname``: sorted ``key=value`` pairs, hydra.* left out."""
    return ",".join(sorted(o for o in overrides if not o.lstrip("+~").startswith("hydra.")))


def key_of(override: str) -> str:
    """The key (or group) an override sets: ``a.b=1`` -> ``a.b``, ``+x=2`` -> ``x``."""
    return override.split("=", 1)[0].lstrip("+~")
