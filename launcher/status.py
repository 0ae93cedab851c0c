"""``ft_launcher --status RUN_DIR`` (or ``python -m launcher.status RUN_DIR``): what happened to a job, from its files.

Reads only the run directory: ``ft_launches.jsonl`` (every launch's attempts, causes, verdict and exit
code) and, where the template wrote one, ``metrics.jsonl`` (the last checkpoint's step, ``straggler``
events). Prints the attempts with their causes, the restarts in the last hour, the progress, the last
error, the stragglers seen and the verdict. This is CLI output, so it prints; exit 0, or 2 when the
directory holds no launch record.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ft import ExitCode
from launcher.records import launch_log
from launcher.records.metrics_rows import last_checkpoint_step, stragglers

_HOUR = 3600.0
_ROW_KEYS = ("step", "time", "attempt", "event")


def report(run_dir: Path, now: float | None = None) -> list[str]:
    """The report's lines; raises FileNotFoundError when ``run_dir`` has no ``ft_launches.jsonl`` line."""
    launches = launch_log.read(run_dir)
    if not launches:
        raise FileNotFoundError(f"{run_dir}: no {launch_log.FILE_NAME} (not a run directory of ft_launcher, "
                                f"or no launch has ended yet)")
    now = time.time() if now is None else now
    lines = [f"run directory: {run_dir}", f"launches: {len(launches)}", "attempts:"]
    restarts, checkpointed, last_error = 0, None, None
    for number, launch in enumerate(launches, 1):
        for attempt in launch.get("attempts", []):
            lines.append("  " + _attempt_line(number, attempt))
            started = launch.get("started_at", 0) + (attempt.get("started") or 0)
            if attempt.get("number", 0) > 0 and started >= now - _HOUR:
                restarts += 1
            if attempt.get("checkpointed") is not None:
                checkpointed = (number, attempt.get("number"))
            if attempt.get("outcome") == "failed":
                last_error = _error(attempt)
    lines.append(f"restarts in the last hour: {restarts}")
    lines.append(f"progress: {_progress(run_dir, checkpointed)}")
    lines.append(f"last error: {last_error or 'none'}")
    lines.extend(_stragglers(run_dir))
    lines.append(f"verdict: {_verdict(launches[-1])}")
    return lines


def _attempt_line(launch: int, attempt: dict[str, Any]) -> str:
    took = ""
    if attempt.get("ended") is not None and attempt.get("started") is not None:
        took = f" after {attempt['ended'] - attempt['started']:.1f} s"
    line = f"launch {launch} attempt {attempt.get('number')}: {attempt.get('outcome')}{took}: {attempt.get('cause')}"
    return line + (f"; {attempt['error']}" if attempt.get("error") else "")


def _error(attempt: dict[str, Any]) -> str:
    return f"attempt {attempt.get('number')}: {attempt.get('error') or attempt.get('cause')}"


def _progress(run_dir: Path, checkpointed: tuple[int, int] | None) -> str:
    step = last_checkpoint_step(run_dir)
    if step is not None:
        return f"last checkpoint at step {step}"
    if checkpointed is not None:
        return f"a checkpoint completed in launch {checkpointed[0]} attempt {checkpointed[1]} (step not recorded)"
    return "no checkpoint seen"


def _stragglers(run_dir: Path) -> list[str]:
    found = stragglers(run_dir)
    if not found:
        return ["stragglers: none seen"]
    lines = [f"stragglers: {len(found)} event(s)"]
    for row in found[-10:]:
        rest = " ".join(f"{k}={v}" for k, v in row.items() if k not in _ROW_KEYS)
        lines.append(f"  step {row.get('step')} (attempt {row.get('attempt')}): {rest}")
    return lines


def _verdict(launch: dict[str, Any]) -> str:
    code = launch.get("exit_code")
    words = ExitCode.describe(code) if isinstance(code, int) else str(launch.get("outcome"))
    line = f"{words} (exit code {code})"
    return f"{line}: {launch['verdict']}" if launch.get("verdict") else line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: ft_launcher --status RUN_DIR  (or python -m launcher.status RUN_DIR)\n")
        return ExitCode.USAGE_ERROR
    try:
        lines = report(Path(argv[0]).resolve())
    except FileNotFoundError as exc:
        sys.stderr.write(f"ft_launcher --status: {exc}\n")
        return ExitCode.USAGE_ERROR
    print("\n".join(lines))
    return ExitCode.FINISHED


def status_argv(argv: list[str]) -> list[str] | None:
    """``--status RUN_DIR`` or ``--status=RUN_DIR`` as the first argument: the rest for :func:`main`, else None."""
    if argv and argv[0] == "--status":
        return argv[1:]
    if argv and argv[0].startswith("--status="):
        return [argv[0].split("=", 1)[1], *argv[1:]]
    return None


if __name__ == "__main__":
    sys.exit(main())
