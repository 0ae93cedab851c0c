"""Each point's ft_launcher command: flags from ``hydra.launcher``, the app's config location, its overrides."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ft.shared.config import FIELD_NAMES
from launcher.plan import quote

__all__ = ["check_options", "fixed_overrides", "hydra_overrides", "launcher_command", "point_dir",
           "point_launcher", "quote"]


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


def launcher_command(options: DictConfig, config: DictConfig) -> list[str]:
    """``python -m launcher.cli <flags> <script> <-cp/-cn of the app>``; point overrides follow."""
    cmd = [sys.executable, "-m", "launcher.cli", f"--nproc-per-node={options.nproc_per_node}",
           f"--max-restarts={options.max_restarts}"]
    if options.ft_cfg_path:
        cmd.append(f"--ft-cfg-path={Path(str(options.ft_cfg_path)).absolute()}")
    cmd += [f"--ft-{key.replace('_', '-')}={'null' if value is None else value}"
            for key, value in (options.ft or {}).items()]
    cmd += [str(arg) for arg in options.extra_args]
    script = Path(str(options.script)) if options.script else Path(sys.argv[0])
    return [*cmd, str(script.absolute()), *_config_location(config)]


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


def fixed_overrides(config: DictConfig) -> set[str]:
    """Keys the command line gives one value for, the same in every point (not repeated in the summary)."""
    from launcher.multirun import key_of, non_sweep

    return {key_of(o) for o in non_sweep(list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or []))}


def hydra_overrides(config: DictConfig, sweep_only: tuple[str, ...]) -> list[str]:
    """The user's ``hydra.*`` overrides that shape each run (logging, job settings), not the sweep's."""
    given = OmegaConf.select(config, "hydra.overrides.hydra", default=[]) or []
    return [o for o in given if not o.lstrip("+~").startswith(sweep_only)]


def point_dir(cfg: DictConfig) -> Path:
    """``<hydra.sweep.dir>/<hydra.sweep.subdir>`` of the point, absolute."""
    return (Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)).absolute()
