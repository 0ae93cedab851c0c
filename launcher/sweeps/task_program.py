"""Which program each point's ``ft_launcher`` runs for the task function a Hydra sweep hands over.

A point is a process of its own (its own rank monitor and restarts), so it needs the task function
as something a new process can start: the script that defines it (``train.py``), or its module
(``-m pkg.app``). A task function no new process can reach (a closure, a callable object, a lambda)
has no program; the plugin then runs its points in its own process, as Hydra's basic launcher does.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def task_program(task_function: Callable[..., Any]) -> list[str] | None:
    """``[script]`` or ``["-m", module]`` that runs ``task_function`` as a Hydra app, else None."""
    if not inspect.isfunction(task_function) or "<" in task_function.__qualname__:
        return None  # a closure (<locals>), a lambda, or an object with __call__: only this process has it
    module = sys.modules.get(task_function.__module__)
    file = getattr(module, "__file__", None)
    if module is None or file is None:
        return None
    spec = getattr(module, "__spec__", None)
    if task_function.__module__ == "__main__":
        # Started with ``python -m pkg.app`` (a spec), else ``python app.py``.
        return ["-m", spec.name] if spec is not None and spec.name else [str(Path(file).absolute())]
    if _runs_as_main(Path(file)):
        return ["-m", task_function.__module__]
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    # A console script (``myapp = "pkg.cli:main"``) calls the function from a launcher file of its own.
    return [str(started.absolute())] if started is not None and started.is_file() else None


def _runs_as_main(file: Path) -> bool:
    """The module calls something when run as ``python -m`` (its ``if __name__ == "__main__":`` block)."""
    try:
        source = file.read_text(errors="replace")
    except OSError:
        return False
    return "__name__ == \"__main__\"" in source or "__name__ == '__main__'" in source
