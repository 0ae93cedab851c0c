"""Start rank processes as torchrun would (RANK, WORLD_SIZE, MASTER_*), talk to them, always clean up."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from ft_helpers.paths import REPO as ROOT

WORKER = Path(__file__).with_name("rank_worker.py")


def free_port() -> int:
    """A TCP port free on this host now (the one helper every test uses)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerError(AssertionError):
    """A command failed inside a rank process."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('type')}: {reply.get('error')}")
        self.reply = reply


class RankProcesses:
    """``world`` processes running ``script``; the rank-worker command protocol when it is the default."""

    def __init__(
        self,
        world: int,
        env: dict[str, str] | None,
        log_dir: Path,
        script: Path = WORKER,
        args: list[str] | None = None,
    ) -> None:
        port = str(free_port())
        self.procs: list[subprocess.Popen[str]] = []
        self.stderr_paths = [log_dir / f"rank{r}.stderr" for r in range(world)]
        self._replies: list[queue.Queue[str]] = []
        base = {k: v for k, v in os.environ.items() if k != "PULSETRAIN_FT_ENDPOINT"}
        base |= {"WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        base |= {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        try:
            for rank in range(world):
                proc_env = base | {"RANK": str(rank), "LOCAL_RANK": str(rank)} | (env or {})
                with open(self.stderr_paths[rank], "w") as err:
                    proc = subprocess.Popen(
                        [sys.executable, str(script), *(args or [])],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=err,
                        env=proc_env,
                        cwd=ROOT,
                        text=True,
                    )
                self.procs.append(proc)
                replies: queue.Queue[str] = queue.Queue()
                threading.Thread(target=self._pump, args=(proc, replies), daemon=True).start()
                self._replies.append(replies)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _pump(proc: subprocess.Popen[str], replies: queue.Queue[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            replies.put(line)

    def send(self, rank: int, **cmd: Any) -> None:
        stdin = self.procs[rank].stdin
        assert stdin is not None
        stdin.write(json.dumps(cmd) + "\n")
        stdin.flush()

    def line(self, rank: int, timeout: float = 60.0) -> str:
        try:
            return self._replies[rank].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"rank {rank} wrote nothing within {timeout} s; stderr:\n{self.stderr(rank)}") from None

    def reply(self, rank: int, timeout: float = 60.0, check: bool = True) -> Any:
        reply = json.loads(self.line(rank, timeout))
        if check and not reply["ok"]:
            raise WorkerError(reply)
        return reply["result"] if check else reply

    def call(self, rank: int, timeout: float = 60.0, **cmd: Any) -> Any:
        self.send(rank, **cmd)
        return self.reply(rank, timeout)

    def call_all(self, timeout: float = 60.0, check: bool = True, **cmd: Any) -> list[Any]:
        """Send to every rank before reading any reply (collectives need all ranks in)."""
        for rank in range(len(self.procs)):
            self.send(rank, **cmd)
        return [self.reply(rank, timeout, check) for rank in range(len(self.procs))]

    def stderr(self, rank: int) -> str:
        return self.stderr_paths[rank].read_text()

    def pid(self, rank: int) -> int:
        return self.procs[rank].pid

    def wait(self, rank: int, timeout: float = 30.0) -> int:
        return self.procs[rank].wait(timeout)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass

    def __enter__(self) -> RankProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
