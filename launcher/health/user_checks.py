"""The user's own health checks (``fault_tolerance.health_checks``): import paths of callables that raise with a message."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from launcher.health.problems import CheckFailed


class UnusableCheck(ValueError):
    """A ``fault_tolerance.health_checks`` entry that names nothing callable: bad input, not a sick node."""


def load(path: str, search: Iterable[Path] = ()) -> Callable[[], object]:
    """``pkg.mod:func`` or ``pkg.mod.func`` as a callable; ``search`` dirs (the script's, the cwd) are tried too."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UnusableCheck(f"fault_tolerance.health_checks: {path!r} is not an import path such as pkg.mod:func")
    added = [str(d) for d in search if str(d) not in sys.path]
    sys.path[len(sys.path):] = added  # after everything else: never shadows an installed module
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:  # ImportError, AttributeError, or the module's own error at import
        raise UnusableCheck(f"fault_tolerance.health_checks: {path!r} cannot be loaded "
                            f"({type(exc).__name__}: {exc})") from None
    finally:
        for entry in added:
            sys.path.remove(entry)
    if not callable(target):
        raise UnusableCheck(f"fault_tolerance.health_checks: {path!r} is a {type(target).__name__}, not a callable")
    return target


def run(path: str, check: Callable[[], object]) -> None:
    """Call one user check; whatever it raises is the node's failure, in its own words."""
    try:
        check()
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise CheckFailed(path, f"{type(exc).__name__}: {message}",
                          "fix what it names on this node, or run on another node") from None
