"""Launches for the launcher tests: start real ft_launcher processes, wait on files instead of sleeping, clean up everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ft_helpers.paths import LAUNCHER_WORKERS as WORKERS
from ft_helpers.paths import REPO

_SCRIPT = Path(sys.executable).parent / "ft_launcher"
# The installed console script when there is one (what users run), else the module.
FT_LAUNCHER = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "launcher.cli"]
PLAIN = str(WORKERS / "plain_worker.py")
HYDRA = str(WORKERS / "hydra_worker.py")


def records(directory: Path) -> dict[tuple[int, int], dict]:
    """(rank, attempt) -> what that worker wrote."""
    found = {}
    for path in Path(directory).glob("rank*.attempt*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found[(data["rank"], data["attempt"])] = data
    return found


def wait_for(predicate, timeout: float, what: str, period: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class StderrLines:
    """Reads a process's stderr on a thread, stamping each line with the time it arrived (time.time(), as workers do)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self.lines.append((time.time(), line))

    def first(self, text: str) -> float | None:
        return next((t for t, line in self.lines if text in line), None)

    def text(self) -> str:
        self._thread.join(10)
        return "".join(line for _, line in self.lines)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Launches:
    """Starts ft_launcher processes and guarantees none of them (or their workers) outlives the test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.out_dirs: list[Path] = []

    def start(self, args: list[str], out: Path | None = None, env: dict | None = None,
              launcher: list[str] | None = None) -> subprocess.Popen:
        full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO)}
        if out is not None:
            self.out_dirs.append(out)
            full_env.setdefault("LAUNCHER_TEST_OUT", str(out))
        proc = subprocess.Popen((launcher or FT_LAUNCHER) + args, cwd=self.tmp, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, args: list[str], out: Path | None = None, env: dict | None = None,
            timeout: float = 60) -> tuple[int, str]:
        proc = self.start(args, out, env)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            _, err = proc.communicate()
            raise AssertionError(f"ft_launcher did not end within {timeout} s:\n{err}") from None
        return proc.returncode, err

    def _kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self._kill(proc)
                proc.wait(10)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        for out in self.out_dirs:  # workers run in their own sessions: end any left over
            for directory in [out, *Path(out).rglob("ranks")] if Path(out).exists() else []:
                for data in records(directory).values():
                    if pid_alive(data["pid"]):
                        try:
                            os.killpg(data["pid"], signal.SIGKILL)
                        except OSError:
                            pass
