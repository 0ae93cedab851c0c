"""Find the script's Hydra config and compose it exactly as the script will, with the same overrides.

Discovery, first match wins: Hydra's ``--config-path/-cp`` and ``--config-name/-cn`` among the
script's arguments; the ``@hydra.main(config_path=..., config_name=...)`` literals read from the
script's source with ``ast`` (the script is never imported: importing it could start training);
``conf/`` beside the script. A script without ``hydra.main`` is not a Hydra app.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.cli.args import UsageError

# Hydra's own flags: (spellings, takes a value). They are not overrides, so they are not composed.
_HYDRA_FLAGS = {
    "--config-path": True, "-cp": True, "--config-name": True, "-cn": True, "--config-dir": True, "-cd": True,
    "--cfg": True, "-c": True, "--package": True, "-p": True, "--shell-completion": False, "-sc": False,
    "--multirun": False, "-m": False, "--info": False, "-i": False, "--resolve": False, "--help": False,
    "-h": False, "--hydra-help": False, "--version": False, "--experimental-rerun": True,
}


@dataclass
class ScriptArgs:
    """The script's arguments split into Hydra flags and overrides."""

    overrides: list[str] = field(default_factory=list)
    flags: dict[str, str | None] = field(default_factory=dict)  # long spelling -> value
    multirun: bool = False


def split_script_args(args: list[str]) -> ScriptArgs:
    out = ScriptArgs()
    long_of = {"-cp": "--config-path", "-cn": "--config-name", "-cd": "--config-dir", "-m": "--multirun",
               "-c": "--cfg", "-p": "--package", "-i": "--info", "-h": "--help", "-sc": "--shell-completion"}
    i = 0
    while i < len(args):
        token = args[i]
        name, eq, value = token.partition("=")
        if name in _HYDRA_FLAGS:
            takes = _HYDRA_FLAGS[name]
            if takes and not eq:
                value = args[i + 1] if i + 1 < len(args) else ""
                i += 1
            out.flags[long_of.get(name, name)] = value if takes else None
        else:
            out.overrides.append(token)
        i += 1
    out.multirun = "--multirun" in out.flags
    return out


@dataclass
class ConfigLocation:
    """Where the primary config is: a directory (or None: ConfigStore only) and a name."""

    config_dir: Path | None
    config_name: str | None
    version_base: str | None
    how: str  # for the log: which rule found it


def _hydra_main_call(source: str) -> ast.Call | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call):
                    func = deco.func
                    if (isinstance(func, ast.Attribute) and func.attr == "main"
                            and isinstance(func.value, ast.Name) and func.value.id == "hydra"):
                        return deco
                    if isinstance(func, ast.Name) and func.id == "main" and "from hydra import" in source:
                        return deco
    return None


def _literal(call: ast.Call, name: str, position: int) -> tuple[bool, Any]:
    node = next((kw.value for kw in call.keywords if kw.arg == name), None)
    if node is None and len(call.args) > position:
        node = call.args[position]
    if node is None:
        return True, None
    try:
        return True, ast.literal_eval(node)
    except ValueError:
        return False, None  # not a literal (a variable): cannot be read without running the script


def script_file(script: str, module: bool) -> Path | None:
    if not module:
        return Path(script).resolve()
    try:
        spec = importlib.util.find_spec(script)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).resolve() if spec and spec.origin and spec.origin.endswith(".py") else None


def locate(script_path: Path, args: ScriptArgs) -> ConfigLocation | None:
    """The script's config location, or None when the script is not a Hydra app."""
    source = script_path.read_text(errors="replace") if script_path.is_file() else ""
    call = _hydra_main_call(source)
    cli_path = args.flags.get("--config-path")
    cli_name = args.flags.get("--config-name")
    if call is None and cli_path is None and cli_name is None:
        return None
    version_base = "1.3"
    deco_path: Any = None
    deco_name: Any = None
    readable = call is not None
    if call is not None:
        ok_p, deco_path = _literal(call, "config_path", 0)
        ok_n, deco_name = _literal(call, "config_name", 1)
        ok_v, version = _literal(call, "version_base", 2)
        readable = ok_p and ok_n
        version_base = version if ok_v and version else version_base
    how = "-cp/-cn" if (cli_path or cli_name) else "@hydra.main"
    if not readable and not (cli_path and cli_name):
        deco_path, deco_name, how = "conf", None, "conf/ beside the script"
    path = cli_path if cli_path is not None else deco_path
    name = cli_name if cli_name is not None else deco_name
    config_dir = None
    if path is not None:
        config_dir = Path(path) if os.path.isabs(path) else (script_path.parent / path)
        config_dir = config_dir.resolve()
        if not config_dir.is_dir():
            raise UsageError(f"config directory not found: {config_dir} (from {how} of {script_path.name})")
        if name is None:
            name = _guess_name(config_dir, script_path)
    return ConfigLocation(config_dir, name, version_base, how)


def _guess_name(config_dir: Path, script_path: Path) -> str | None:
    for candidate in (script_path.stem, "config"):
        if (config_dir / f"{candidate}.yaml").is_file():
            return candidate
    yamls = sorted(config_dir.glob("*.yaml"))
    return yamls[0].stem if len(yamls) == 1 else None


def compose(location: ConfigLocation, overrides: list[str], job_name: str) -> Any:
    """Compose the primary config with ``overrides`` (Hydra's section included); errors → UsageError."""
    from hydra import compose as hydra_compose
    from hydra import initialize, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ft.shared.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    if location.config_dir is not None:
        context = initialize_config_dir(str(location.config_dir), version_base=location.version_base,
                                        job_name=job_name)
    else:
        context = initialize(config_path=None, version_base=location.version_base, job_name=job_name)
    try:
        with context:
            return hydra_compose(location.config_name, overrides=overrides, return_hydra_config=True)
    except Exception as exc:  # Hydra/OmegaConf errors: a typo'd key, a missing group option, a bad value
        raise UsageError(f"cannot compose the script's config: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({' '.join(str(cause).split())})"
    return text or type(exc).__name__


def resolve_dir(cfg: Any, key: str, cwd: Path, job_num: int | None = None, override_dirname: str = "") -> Path:
    """Resolve ``hydra.<key>`` (run.dir, sweep.dir, sweep.subdir) once, as an absolute path."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict, read_write

    with read_write(cfg.hydra), open_dict(cfg.hydra):
        if job_num is not None:
            cfg.hydra.job.num = job_num
            cfg.hydra.job.override_dirname = override_dirname
    HydraConfig.instance().set_config(cfg)
    try:
        text = str(OmegaConf.select(cfg, f"hydra.{key}", throw_on_missing=True))
    except Exception as exc:
        raise UsageError(f"cannot resolve hydra.{key}: {one_line(exc)}") from None
    path = Path(text)
    return path if path.is_absolute() else (cwd / path)
