"""The ft_launcher command line: torchrun's flags with torchrun's meanings, plus the ``--ft-*`` flags.

Imports no torch, so a mistake on the command line is reported in a fraction of a second.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ft.shared.config import FIELD_NAMES, SETTINGS
from ft.shared.contracts import NO_FORK_SERVER_ENV
from launcher.cli.torchrun_extras import TORCHRUN_EXTRAS

DEFAULT_TERM_TIMEOUT = 30.0


class UsageError(Exception):
    """The command line or configuration is wrong; nothing was started (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit; we report one line
        raise UsageError(message)


@dataclass(frozen=True)
class Flag:
    """One launcher flag, declared once: the parser, the pre-parse scan of argv and --help all read it.

    ``switch`` flags take no value; every other flag takes one, so a value-less switch can never
    swallow the script name, and a new flag cannot be a switch in one place and not in another.
    """

    name: str  # without dashes; --a-b also answers to --a_b
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    switch: bool = False
    short: str | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    pet_env: bool = True  # torchrun reads PET_<FLAG> environment variables as defaults; so do we
    group: str = "torchrun"

    @property
    def spellings(self) -> list[str]:
        names = [f"--{self.name}"] + ([f"--{self.name.replace('-', '_')}"] if "-" in self.name else [])
        return ([self.short] if self.short else []) + names

    def add_to(self, group: argparse._ArgumentGroup) -> None:
        kwargs: dict[str, Any] = {"help": self.help}
        if self.switch:
            kwargs.update(action="store_true", default=self.default or False)
        else:
            default = os.environ.get("PET_" + self.name.upper().replace("-", "_"), self.default) \
                if self.pet_env else self.default
            kwargs.update(default=default, type=self.type, choices=self.choices, metavar=self.metavar)
        group.add_argument(*self.spellings, **kwargs)


FLAGS: tuple[Flag, ...] = (
    Flag("nnodes", "number of nodes, or MIN:MAX (default 1:1)", "1:1"),
    Flag("nproc-per-node", "workers per node: an integer, auto, cpu or gpu (default 1)", "1"),
    Flag("standalone", "single node: local c10d rendezvous on a free port", switch=True),
    Flag("rdzv-backend", "rendezvous backend: static or c10d (default static)", "static"),
    Flag("rdzv-endpoint", "rendezvous endpoint HOST:PORT", ""),
    Flag("rdzv-id", "job id shared by all nodes", "none"),
    Flag("rdzv-conf", "extra rendezvous settings KEY=VALUE,...", ""),
    Flag("max-restarts", "worker group restarts allowed before failing (default 0)", 0, int),
    Flag("monitor-interval", "seconds between worker state checks (default 0.1)", 0.1, float),
    Flag("node-rank", "rank of this node (static rendezvous only)", 0, int),
    Flag("master-addr", "address of node 0 (static rendezvous only)", "127.0.0.1"),
    Flag("master-port", "port on node 0 (static rendezvous only; default 29500)", None, int),
    Flag("local-addr", "address of this node used for the rendezvous"),
    Flag("log-dir", "directory for per-attempt worker logs (default: a temp dir)"),
    Flag("redirects", "send worker stdout/stderr to files in --log-dir (0-3 or RANK:N,...)", "0", short="-r"),
    Flag("tee", "like --redirects, also copied to the console", "0", short="-t"),
    Flag("local-ranks-filter", "only show these local ranks' output, e.g. 0,1", ""),
    Flag("role", "worker role name", "default"),
    Flag("start-method", "accepted for torchrun compatibility; script workers are started by the fork server "
         "or as processes", "spawn", choices=("spawn", "fork", "forkserver")),
    Flag("module", "run the script as a module, like python -m", switch=True, short="-m"),
    Flag("no-python", "run the script as a program, without python", switch=True),
    Flag("signals-to-handle", "signals that stop the workers cleanly (default SIGTERM,SIGINT,SIGHUP,SIGQUIT)",
         metavar="SIG,..."),
    *(Flag(name, text, switch=switch) for name, text, switch in TORCHRUN_EXTRAS),
    Flag("ft-cfg-path", "YAML file with a fault_tolerance: section", metavar="FILE", pet_env=False, group="ft"),
    Flag("term-timeout", f"after SIGTERM/SIGINT: how long workers get to stop cleanly before SIGKILL (default "
         f"{DEFAULT_TERM_TIMEOUT:g})", DEFAULT_TERM_TIMEOUT, float, metavar="SECONDS", pet_env=False, group="ft"),
    Flag("stop-signal", "more signals that stop the workers cleanly, e.g. SIGUSR1 for SLURM's --signal=B:USR1@120",
         metavar="SIG[,SIG]", group="ft"),
    Flag("no-fork-server", f"start every worker as a fresh python process (also: {NO_FORK_SERVER_ENV}=1)",
         os.environ.get(NO_FORK_SERVER_ENV, "") not in ("", "0"), switch=True, group="ft"),
)
_HELP = ("-h", "--help")
SWITCHES = frozenset(_HELP).union(*(f.spellings for f in FLAGS if f.switch))
TAKES_VALUE = frozenset().union(*(f.spellings for f in FLAGS if not f.switch))


def ft_flag_names(key: str) -> list[str]:
    """``--ft-rank-heartbeat-timeout`` and the spellings NVIDIA's ft_launcher accepts for it."""
    dashed = key.replace("_", "-")
    return sorted({f"--ft-{dashed}", f"--ft-{key}", f"--ft_{key}", f"--ft-param-{key}"})


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ft_launcher",
        description="Fault-tolerant, torchrun-compatible launcher: restarts the worker group after a "
        "crash or a hang found by missed heartbeats. Arguments after the script go to the script "
        "(Hydra overrides, -m for a sweep).",
        epilog="ft_launcher --status RUN_DIR: what happened to a job (attempts, causes, progress, verdict), "
        "read from its run directory; starts nothing.",
        allow_abbrev=False,
    )
    groups = {
        "torchrun": parser.add_argument_group("torchrun-compatible"),
        "ft": parser.add_argument_group(
            "fault tolerance",
            "Precedence, lowest to highest: schema defaults < the script's composed Hydra config "
            "(conf/ + overrides after the script) < --ft-cfg-path < --ft-* flags. null = infinite.",
        ),
    }
    for flag in FLAGS:
        flag.add_to(groups[flag.group])
    for key, described in SETTINGS.items():  # help and metavar come from the schema's field metadata
        main = f"--ft-{key.replace('_', '-')}"
        groups["ft"].add_argument(main, dest=f"ft_{key}", metavar=described.metavar, default=None,
                                  help=described.help)
        # NVIDIA ft_launcher's spellings work too; listed once in docs/launcher.md, not in --help.
        aliases = [name for name in ft_flag_names(key) if name != main]
        groups["ft"].add_argument(*aliases, dest=f"ft_{key}", default=None, help=argparse.SUPPRESS)

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


def launcher_flags(argv: list[str]) -> list[tuple[str, str | None]]:
    """(flag, value) pairs before the script; everything after the script belongs to the script."""
    return _split(argv)[0]


def _split(argv: list[str]) -> tuple[list[tuple[str, str | None]], int]:
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag, eq, value = argv[i].partition("=")
        # Unknown --flags are assumed to take a value (argparse reports them later).
        if not eq and flag not in SWITCHES and (flag in TAKES_VALUE or flag.startswith("--")):
            value = argv[i + 1] if i + 1 < len(argv) else None
            i += 1
        pairs.append((flag, value if (eq or value is not None) else None))
        i += 1
    return pairs, i


def _check_ft_spelling(argv: list[str]) -> None:
    """Name the closest known flag for a mistyped ``--ft-*`` one (argparse only says 'unrecognized')."""
    known = [*SWITCHES, *TAKES_VALUE, *(name for key in SETTINGS for name in ft_flag_names(key))]
    for flag, _ in launcher_flags(argv):
        if re.match(r"^--ft[-_]", flag) and flag not in known:
            hint = difflib.get_close_matches(flag, known, n=1, cutoff=0.5)
            raise UsageError(f"unknown flag {flag}" + (f"; did you mean {hint[0]}?" if hint else ""))


def parse(argv: list[str]) -> LaunchArgs:
    parser = build_parser()
    _check_ft_spelling(argv)
    ns = parser.parse_args(argv)
    if ns.module and ns.no_python:
        raise UsageError("--module and --no-python cannot be used together")
    from launcher.cli.stop_signals import StopSignalError, resolve

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
    stop = {*_HELP, "--no-python", "--no_python", "--no-fork-server", "--no_fork_server"}
    return not any(flag in stop for flag, _ in flags)
