"""Each point's ft_launcher command: flags from ``hydra.launcher``, the app's config location, its overrides."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ft.shared.config import FIELD_NAMES

__all__ = ["check_options", "given_overrides", "hydra_overrides", "launcher_command", "point_dir", "point_launcher", "program"]


class FtLauncherOptionError(ValueError):
    """A ``hydra.launcher.*`` value ft_launcher cannot take."""


def check_options(options: DictConfig) -> None:
    """Refuse bad options before any point starts, naming the option and the value."""
    unknown = sorted(set(options.ft or {}) - set(FIELD_NAMES))
    if unknown:
        raise FtLauncherOptionError(f"hydra.launcher.ft.{unknown[0]}: not a fault-tolerance setting "
                                    f"(known: {', '.join(FIELD_NAMES)})")
    for key in ("n_jobs", "max_restarts"):
        value = options[key]
        if not isinstance(value, int) or value < (1 if key == "n_jobs" else 0):
            raise FtLauncherOptionError(f"hydra.launcher.{key}: expected a whole number >= "
                                        f"{1 if key == 'n_jobs' else 0}, got {value!r}")
    if not options.standalone and not options.rdzv_endpoint:
        raise FtLauncherOptionError("hydra.launcher.standalone=false needs hydra.launcher.rdzv_endpoint")


def program(options: DictConfig, task_function) -> list[str] | None:
    """What each point runs: ``hydra.launcher.script`` when set, else the task function's script or module."""
    if options.script:
        return [str(Path(str(options.script)).absolute())]
    from launcher.sweeps import task_program

    return task_program(task_function)


def launcher_command(options: DictConfig, config: DictConfig, target: list[str]) -> list[str]:
    """``python -m launcher.cli <flags> <target> <-cp/-cn of the app>``; point overrides follow."""
    cmd = [sys.executable, "-m", "launcher.cli", f"--nproc-per-node={options.nproc_per_node}",
           f"--max-restarts={options.max_restarts}"]
    if options.ft_cfg_path:
        cmd.append(f"--ft-cfg-path={Path(str(options.ft_cfg_path)).absolute()}")
    cmd += [f"--ft-{key.replace('_', '-')}={'null' if value is None else value}"
            for key, value in (options.ft or {}).items()]
    cmd += [str(arg) for arg in options.extra_args]
    return [*cmd, *target, *_config_location(config)]


def point_launcher(base: list[str], options: DictConfig, number: int) -> list[str]:
    """The rendezvous flags of one point, inserted before the script."""
    if options.standalone:
        flags = ["--standalone"]
    else:
        run_id = f"{options.rdzv_id or 'sweep'}-{number}"
        flags = [f"--nnodes={options.nnodes}", f"--rdzv-backend={options.rdzv_backend}",
                 f"--rdzv-endpoint={options.rdzv_endpoint}", f"--rdzv-id={run_id}"]
    at = base.index("launcher.cli") + 1
    return [*base[:at], *flags, *base[at:]]


def _config_location(config: DictConfig) -> list[str]:
    """The app's primary config (and any --config-dir) as the points' -cp/-cn/-cd flags."""
    flags = []
    for source in config.hydra.runtime.config_sources:
        if source.schema != "file":
            continue
        if source.provider == "main":
            flags.append(f"--config-path={source.path}")
        elif source.provider == "command-line":
            flags.append(f"--config-dir={source.path}")
    if config.hydra.job.config_name:
        flags.append(f"--config-name={config.hydra.job.config_name}")
    return flags


def hydra_overrides(config: DictConfig, sweep_only: tuple[str, ...]) -> list[str]:
    """The user's ``hydra.*`` overrides that shape each run (logging, job settings), not the sweep's."""
    return [o for o in given_overrides(config, "hydra") if not o.lstrip("+~").startswith(sweep_only)]


def given_overrides(config: DictConfig, kind: str) -> list[str]:
    """``hydra.overrides.<kind>`` (task or hydra) as typed: ``${hydra.job.num}`` in them stays unresolved."""
    node = OmegaConf.select(config, f"hydra.overrides.{kind}", default=None)
    return [str(o) for o in OmegaConf.to_container(node, resolve=False)] if node is not None else []


def point_dir(cfg: DictConfig) -> Path:
    """``<hydra.sweep.dir>/<hydra.sweep.subdir>`` of the point, absolute."""
    return (Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)).absolute()
