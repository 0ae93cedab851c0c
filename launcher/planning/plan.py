"""Turn the command line into job plans: checked inputs, composed config, settings, run directory, script args.

Everything here runs before any worker starts, and every mistake becomes a UsageError (exit 2).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ft.shared.devices import DEVICE_KEY
from launcher.cli.args import LaunchArgs
from launcher.planning import hydra_config, multirun
from launcher.planning.ft_settings import FtSettings, resolve

_PLAIN = re.compile(r"^[\w/.\-+]+$")
METRIC_KEY = "trainer.optimized_metric"  # what train.py returns to a sweeper
CHECKPOINT_KEY = "checkpoint.dir"  # the template's checkpoint directory, relative to the run dir


@dataclass
class JobPlan:
    """One fault-tolerant job: what to run and with which settings."""

    name: str
    script_args: list[str]
    settings: FtSettings
    run_dir: Path | None = None
    overrides: list[str] = field(default_factory=list)
    device: str | None = None  # the script's trainer.device, when its config has one
    hydra_flags: list[str] = field(default_factory=list)  # the script's -cp/-cn/... handed on unchanged
    metric: str | None = None  # the script's trainer.optimized_metric, when its config has one
    sweep_dir: Path | None = None  # set for the points of a -m sweep
    checkpoint_dir: Path | None = None  # the template's checkpoint.dir under the run dir (health checks)


def quote(value: str) -> str:
    """A string as a Hydra override value: bare when the grammar allows it, else single-quoted."""
    if _PLAIN.match(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def settle_run_id(args: LaunchArgs) -> None:
    """Fix the rendezvous id before the config is composed, so a run dir built from it agrees on every node.

    Workers see it as TORCHELASTIC_RUN_ID (elastic sets that); the template's ``hydra.run.dir`` uses it.
    """
    if args.standalone:
        # Sortable and unique, so `ls outputs/` lists runs in order (as Hydra's timestamps do).
        args.ns.rdzv_id = f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{uuid.uuid4().hex[:6]}"
    if args.rdzv_id != "none":
        os.environ.setdefault("TORCHELASTIC_RUN_ID", args.rdzv_id)


def plan_jobs(args: LaunchArgs) -> list[JobPlan]:
    script_args = list(args.training_script_args)
    name = Path(args.training_script).stem if not args.module else args.training_script.split(".")[-1]

    def settings_for(section, overrides: list[str], config_file: str | None) -> FtSettings:
        return resolve(section, overrides, config_file, args.ft_cfg_path, args.ft_flags, args.ft_flag_spelling)

    path = None if args.no_python else hydra_config.script_file(args.training_script, args.module)
    split = hydra_config.split_script_args(script_args)
    location = hydra_config.locate(path, split) if path is not None else None
    if location is None:  # not a Hydra app: flags, --ft-cfg-path and defaults only; arguments untouched
        return [JobPlan(name, script_args, settings_for(None, [], None))]

    passthrough = _hydra_flag_args(split)
    cwd = Path.cwd()
    extra = []  # what Hydra's --config-dir/-cd does: one more directory on the search path
    if split.flags.get("--config-dir"):
        extra.append(f"hydra.searchpath=[{quote('file://' + str(Path(split.flags['--config-dir']).resolve()))}]")
    if not split.multirun:
        cfg = hydra_config.compose(location, [*split.overrides, *extra], name)
        run_dir = hydra_config.resolve_dir(cfg, "run.dir", cwd).resolve()
        return [_hydra_job(name, cfg, split.overrides, passthrough, run_dir, settings_for)]
    base = hydra_config.compose(location, [*multirun.non_sweep(split.overrides), *extra], name)
    sweep_dir = hydra_config.resolve_dir(base, "sweep.dir", cwd).resolve()
    plans = []
    for number, overrides in enumerate(multirun.expand(split.overrides, base)):
        cfg = hydra_config.compose(location, [*overrides, *extra], name)
        run_dir = hydra_config.resolve_dir(cfg, "sweep.subdir", sweep_dir, number,
                                           multirun.override_dirname(overrides)).resolve()
        label = " ".join(overrides) or f"{name} #{number}"
        plan = _hydra_job(label, cfg, overrides, passthrough, run_dir, settings_for)
        plan.sweep_dir = sweep_dir
        plans.append(plan)
    return plans


def _hydra_job(name, cfg, overrides, passthrough, run_dir, settings_for) -> JobPlan:
    from omegaconf import OmegaConf

    section = OmegaConf.select(cfg, "fault_tolerance", default=None)
    choice = OmegaConf.select(cfg, "hydra.runtime.choices.fault_tolerance", default=None)
    config_file = _option_file(cfg, "fault_tolerance", choice) if choice else None
    settings = settings_for(section, overrides, config_file)
    args = [*passthrough, *overrides, *settings.worker_overrides, f"hydra.run.dir={quote(str(run_dir))}"]
    device = OmegaConf.select(cfg, DEVICE_KEY, default=None)
    metric = OmegaConf.select(cfg, METRIC_KEY, default=None)
    checkpoints = OmegaConf.select(cfg, CHECKPOINT_KEY, default=None)
    return JobPlan(name, args, settings, run_dir, overrides, None if device is None else str(device),
                   passthrough, None if metric is None else str(metric),
                   checkpoint_dir=None if checkpoints is None else run_dir / str(checkpoints))


def _option_file(cfg, group: str, choice: str) -> str:
    """The YAML file a group option was read from, searched like Hydra does (its config sources)."""
    from omegaconf import OmegaConf

    for source in OmegaConf.select(cfg, "hydra.runtime.config_sources", default=None) or []:
        if source.get("schema") == "file":
            candidate = Path(source.path) / group / f"{choice}.yaml"
            if candidate.is_file():
                return _display(candidate)
    return f"{group}={choice}"  # a package or the ConfigStore


def _hydra_flag_args(split: hydra_config.ScriptArgs) -> list[str]:
    """The script's Hydra flags (-cp, -cn, ...) to hand on unchanged, without -m/--multirun."""
    out = []
    for flag, value in split.flags.items():
        if flag == "--multirun":
            continue
        out.append(flag if value is None else f"{flag}={value}")
    return out


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
