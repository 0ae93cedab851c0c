"""The ft_launcher command line: torchrun's flags with torchrun's meanings, plus the ``--ft-*`` flags.

Imports no torch, so a mistake on the command line is reported in a fraction of a second.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from dataclasses import dataclass, field

from ft.config import FIELD_NAMES

DEFAULT_TERM_TIMEOUT = 30.0
NO_FORK_SERVER_ENV = "PULSETRAIN_NO_FORK_SERVER"


class UsageError(Exception):
    """The command line or configuration is wrong; nothing was started (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit; we report one line
        raise UsageError(message)


def _env_default(name: str, default):
    """torchrun reads ``PET_<FLAG>`` environment variables as defaults; so do we."""
    return os.environ.get("PET_" + name.upper().replace("-", "_"), default)


def _flag(group, name: str, *, short: str | None = None, **kwargs) -> None:
    spellings = [f"--{name}"]
    if "-" in name:
        spellings.append("--" + name.replace("-", "_"))
    if short:
        spellings.insert(0, short)
    if kwargs.get("action") != "store_true":
        kwargs["default"] = _env_default(name, kwargs.get("default"))
    group.add_argument(*spellings, **kwargs)


def ft_flag_names(key: str) -> list[str]:
    """``--ft-rank-heartbeat-timeout`` and the spellings NVIDIA's ft_launcher accepts for it."""
    dashed = key.replace("_", "-")
    return sorted({f"--ft-{dashed}", f"--ft-{key}", f"--ft_{key}", f"--ft-param-{key}"})


_FT_METAVAR = {"initial_rank_heartbeat_timeout": "S|null", "rank_heartbeat_timeout": "S|null",
               "rank_exit_timeout": "S|null", "rank_out_of_section_timeout": "S|null",
               "rank_section_timeouts": "NAME:S,...",
               "workload_check_interval": "S", "rank_termination_grace": "S", "rank_termination_signal": "SIG",
               "enabled": "BOOL", "calibrate": "BOOL", "calibration_steps": "N", "safety_factor": "X",
               "log_level": "LEVEL"}
_FT_HELP = {
    "enabled": "false: no monitor, crash restarts only",
    "initial_rank_heartbeat_timeout": "longest wait for a rank's first heartbeat",
    "rank_heartbeat_timeout": "longest gap between two heartbeats",
    "rank_section_timeouts": "longest each named section may stay open, e.g. init:600,step:30",
    "rank_out_of_section_timeout": "longest stretch with no section open",
    "rank_exit_timeout": "longest a rank may run on after ending monitoring, once all local ranks are done",
    "safety_factor": "multiplier on observed intervals when timeouts are calculated",
    "workload_check_interval": "how often the monitor checks the deadlines",
    "rank_termination_signal": "signal that ends the worker group after the grace",
    "rank_termination_grace": "seconds between SIGTERM and that signal",
    "calibrate": "let the training loop calculate timeouts",
    "calibration_steps": "steps after the first checkpoint before calculating",
    "log_level": "log level of the monitor",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ft_launcher",
        description="Fault-tolerant, torchrun-compatible launcher: restarts the worker group after a "
        "crash or a hang found by missed heartbeats. Arguments after the script go to the script "
        "(Hydra overrides, -m for a sweep).",
        allow_abbrev=False,
    )
    tr = parser.add_argument_group("torchrun-compatible")
    _flag(tr, "nnodes", default="1:1", help="number of nodes, or MIN:MAX (default 1:1)")
    _flag(tr, "nproc-per-node", default="1", help="workers per node: an integer, auto, cpu or gpu (default 1)")
    _flag(tr, "standalone", action="store_true", help="single node: local c10d rendezvous on a free port")
    _flag(tr, "rdzv-backend", default="static", help="rendezvous backend: static or c10d (default static)")
    _flag(tr, "rdzv-endpoint", default="", help="rendezvous endpoint HOST:PORT")
    _flag(tr, "rdzv-id", default="none", help="job id shared by all nodes")
    _flag(tr, "rdzv-conf", default="", help="extra rendezvous settings KEY=VALUE,...")
    _flag(tr, "max-restarts", type=int, default=0, help="worker group restarts allowed before failing (default 0)")
    _flag(tr, "monitor-interval", type=float, default=0.1, help="seconds between worker state checks (default 0.1)")
    _flag(tr, "node-rank", type=int, default=0, help="rank of this node (static rendezvous only)")
    _flag(tr, "master-addr", default="127.0.0.1", help="address of node 0 (static rendezvous only)")
    _flag(tr, "master-port", type=int, default=None, help="port on node 0 (static rendezvous only; default 29500)")
    _flag(tr, "local-addr", default=None, help="address of this node used for the rendezvous")
    _flag(tr, "log-dir", default=None, help="directory for per-attempt worker logs (default: a temp dir)")
    _flag(tr, "redirects", short="-r", default="0", help="send worker stdout/stderr to files in --log-dir (0-3 or RANK:N,...)")
    _flag(tr, "tee", short="-t", default="0", help="like --redirects, also copied to the console")
    _flag(tr, "local-ranks-filter", default="", help="only show these local ranks' output, e.g. 0,1")
    _flag(tr, "role", default="default", help="worker role name")
    _flag(tr, "start-method", default="spawn", choices=["spawn", "fork", "forkserver"],
          help="accepted for torchrun compatibility; script workers are started by the fork server or as processes")
    _flag(tr, "module", short="-m", action="store_true", help="run the script as a module, like python -m")
    _flag(tr, "no-python", action="store_true", help="run the script as a program, without python")
    _flag(tr, "signals-to-handle", default=None, metavar="SIG,...",
          help="signals that stop the workers cleanly (default SIGTERM,SIGINT,SIGHUP,SIGQUIT)")

    ft = parser.add_argument_group(
        "fault tolerance",
        "Precedence, lowest to highest: schema defaults < the script's composed Hydra config "
        "(conf/ + overrides after the script) < --ft-cfg-path < --ft-* flags. null = infinite.",
    )
    ft.add_argument("--ft-cfg-path", "--ft_cfg_path", metavar="FILE", default=None,
                    help="YAML file with a fault_tolerance: section")
    for key in FIELD_NAMES:
        main = f"--ft-{key.replace('_', '-')}"
        ft.add_argument(main, dest=f"ft_{key}", metavar=_FT_METAVAR.get(key, "VALUE"), default=None,
                        help=_FT_HELP.get(key, f"fault_tolerance.{key}"))
        # NVIDIA ft_launcher's spellings work too; listed once in docs/launcher.md, not in --help.
        aliases = [name for name in ft_flag_names(key) if name != main]
        ft.add_argument(*aliases, dest=f"ft_{key}", default=None, help=argparse.SUPPRESS)
    ft.add_argument("--term-timeout", "--term_timeout", type=float, default=DEFAULT_TERM_TIMEOUT, metavar="SECONDS",
                    help="after SIGTERM/SIGINT: how long workers get to stop cleanly before SIGKILL (default 30)")
    _flag(ft, "stop-signal", default=None, metavar="SIG[,SIG]",
          help="more signals that stop the workers cleanly, e.g. SIGUSR1 for SLURM's --signal=B:USR1@120")
    ft.add_argument("--no-fork-server", "--no_fork_server", action="store_true",
                    default=os.environ.get(NO_FORK_SERVER_ENV, "") not in ("", "0"),
                    help=f"start every worker as a fresh python process (also: {NO_FORK_SERVER_ENV}=1)")

    parser.add_argument("training_script", help="the script (or module with -m, or program with --no-python)")
    parser.add_argument("training_script_args", nargs=argparse.REMAINDER,
                        help="arguments for the script: Hydra overrides; -m/--multirun runs a sweep")
    return parser


@dataclass
class LaunchArgs:
    """The parsed command line."""

    ns: argparse.Namespace
    ft_flags: dict[str, str] = field(default_factory=dict)  # key -> raw text, with the flag spelled
    ft_flag_spelling: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name):
        return getattr(self.ns, name)


_SWITCHES = {"-h", "--help", "--standalone", "-m", "--module", "--no-python", "--no_python",
             "--no-fork-server", "--no_fork_server"}


def launcher_flags(argv: list[str]) -> list[tuple[str, str | None]]:
    """(flag, value) pairs before the script; everything after the script belongs to the script."""
    return _split(argv)[0]


def _split(argv: list[str]) -> tuple[list[tuple[str, str | None]], int]:
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag, eq, value = argv[i].partition("=")
        if not eq and flag not in _SWITCHES and flag.startswith("--"):
            value = argv[i + 1] if i + 1 < len(argv) else None
            i += 1
        elif not eq and flag in ("-r", "-t"):
            value = argv[i + 1] if i + 1 < len(argv) else None
            i += 1
        pairs.append((flag, value if (eq or value is not None) else None))
        i += 1
    return pairs, i


def _check_ft_spelling(argv: list[str], parser: argparse.ArgumentParser) -> None:
    """Name the closest known flag for a mistyped ``--ft-*`` one (argparse only says 'unrecognized')."""
    known = [s for action in parser._actions for s in action.option_strings]
    for flag, _ in launcher_flags(argv):
        if re.match(r"^--ft[-_]", flag) and flag not in known:
            hint = difflib.get_close_matches(flag, known, n=1, cutoff=0.5)
            raise UsageError(f"unknown flag {flag}" + (f"; did you mean {hint[0]}?" if hint else ""))


def parse(argv: list[str]) -> LaunchArgs:
    parser = build_parser()
    _check_ft_spelling(argv, parser)
    ns = parser.parse_args(argv)
    if ns.module and ns.no_python:
        raise UsageError("--module and --no-python cannot be used together")
    from launcher.stop_signals import StopSignalError, resolve

    try:
        ns.stop_signals = resolve(ns.signals_to_handle, ns.stop_signal)
    except StopSignalError as exc:
        raise UsageError(str(exc)) from None
    ft_flags: dict[str, str] = {}
    spelling: dict[str, str] = {}
    for key in FIELD_NAMES:
        value = getattr(ns, f"ft_{key}")
        if value is not None:
            ft_flags[key] = value
            spelling[key] = _spelled(argv, key)
    return LaunchArgs(ns=ns, ft_flags=ft_flags, ft_flag_spelling=spelling)


def _spelled(argv: list[str], key: str) -> str:
    names = ft_flag_names(key)
    for flag, _ in launcher_flags(argv):
        if flag in names:
            return flag
    return f"--ft-{key.replace('_', '-')}"


def parse_nnodes(text: str) -> tuple[int, int]:
    parts = str(text).split(":")
    try:
        low, high = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise UsageError(f"--nnodes: expected N or MIN:MAX, got {text!r}") from None
    if len(parts) > 2 or not 0 < low <= high:
        raise UsageError(f"--nnodes: expected N or MIN:MAX with 0 < MIN <= MAX, got {text!r}")
    return low, high


def peek_nproc(argv: list[str]) -> int | None:
    """The integer ``--nproc-per-node`` value, read before full parsing (to start the fork server early)."""
    for flag, value in launcher_flags(argv):
        if flag in ("--nproc-per-node", "--nproc_per_node"):
            return int(value) if value and value.isdigit() else None
    env = os.environ.get("PET_NPROC_PER_NODE", "1")
    return int(env) if env.isdigit() else None


def wants_fork_server(argv: list[str]) -> bool:
    """False for --help, --no-python, --no-fork-server (or its environment variable)."""
    if os.environ.get(NO_FORK_SERVER_ENV, "") not in ("", "0"):
        return False
    flags, script_index = _split(argv)
    if script_index >= len(argv):
        return False  # no script at all: a usage error follows
    stop = {"-h", "--help", "--no-python", "--no_python", "--no-fork-server", "--no_fork_server"}
    return not any(flag in stop for flag, _ in flags)
