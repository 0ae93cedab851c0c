"""What a person sees: per-rank logging, the config tree, the progress bar or log lines."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.tree import Tree

from ft import rank_from_env

log = logging.getLogger("train")
# One console on stderr for log records, the progress bar and the config tree, so the bar stays
# below the log lines instead of being torn by them; stdout is left to the user's own output.
CONSOLE = Console(stderr=True)


def console_handler() -> logging.Handler:
    """The terminal handler (``conf/hydra/default.yaml``): rich in a terminal, plain lines otherwise.

    Only rank 0 talks on the terminal; other ranks show warnings there, prefixed with their rank,
    and write everything to their own log file.
    """
    rank = str(rank_from_env())
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(show_path=False, markup=False, console=CONSOLE)
        handler.setFormatter(logging.Formatter("%(message)s" if rank == "0" else f"rank {rank}: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        prefix = "" if rank == "0" else f"[rank {rank}] "
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)-7s {prefix}%(message)s", "%H:%M:%S"))
    if rank != "0":
        handler.setLevel(logging.WARNING)
    return handler


def config_tree(cfg: DictConfig) -> Tree:
    """The resolved config as a rich tree, one branch per top-level group."""
    tree = Tree("[bold]config[/bold]")
    for key, value in cfg.items():
        if isinstance(value, DictConfig):
            tree.add(f"[bold cyan]{key}[/bold cyan]").add(OmegaConf.to_yaml(value, resolve=True).rstrip())
        else:
            tree.add(f"[bold cyan]{key}[/bold cyan]: {value}")
    return tree


def show_config(cfg: DictConfig, save_to: Path) -> None:
    """Print the config tree and save it as plain text (rank 0; the caller decides when)."""
    tree = config_tree(cfg)
    CONSOLE.print(tree)
    with save_to.open("w") as f:
        Console(file=f, width=110, no_color=True).print(tree)


def show_start(cfg: DictConfig, run_dir: Path, attempt: int, ctx: Any, fresh: bool, hang_detection: str) -> None:
    """Rank 0 creates the run dir and, on a fresh run, shows the config tree; then the attempt's start-up line."""
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if fresh and attempt == 0:
            show_config(cfg, run_dir / "config_tree.log")
        log.info("run dir %s | attempt %d | %d rank(s) on %s | hang detection %s", run_dir, attempt,
                 ctx.world_size, ctx.device.type, hang_detection)


class ProgressReport:
    """Rank 0's view of training: a rich bar in a terminal, a plain line every ``log_every`` steps otherwise."""

    def __init__(self, max_steps: int, start_step: int, log_every: int, enabled: bool,
                 interactive: bool | None = None) -> None:
        self.max_steps, self.log_every, self.enabled = max_steps, max(1, log_every), enabled
        interactive = sys.stderr.isatty() if interactive is None else interactive
        self._bar: Progress | None = None
        self._mark = (start_step, time.perf_counter())
        self.steps_per_s = 0.0
        if enabled and interactive:
            self._bar = Progress(
                TextColumn("[bold]train[/bold]"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} steps/s"),
                TimeElapsedColumn(), console=CONSOLE, transient=False,
            )
            self._task = self._bar.add_task("train", total=max_steps, completed=start_step, loss="-", rate="-")
            self._bar.start()

    def due(self, step: int) -> bool:
        """True on the steps that are logged: every ``log_every`` and the last."""
        return step % self.log_every == 0 or step == self.max_steps

    def step(self, step: int, loss: float | None) -> bool:
        """Record a finished step; True on the steps that are logged (see :meth:`due`)."""
        due = self.due(step)
        if due:
            start, t0 = self._mark
            now = time.perf_counter()
            self.steps_per_s = (step - start) / max(now - t0, 1e-9)
            self._mark = (step, now)
        if not self.enabled:
            return due
        if self._bar is not None:
            fields = {"loss": f"{loss:.4f}", "rate": f"{self.steps_per_s:.1f}"} if due and loss is not None else {}
            self._bar.update(self._task, completed=step, **fields)
        elif due and loss is not None:
            log.info("step %d/%d  loss %.4f  %.1f steps/s", step, self.max_steps, loss, self.steps_per_s)
        return due

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
