"""Shared behaviour of the launcher test workers: steps with heartbeats, and faults on request.

Faults are chosen with environment-free arguments so every rank and attempt reads the same plan:
``hang=RANK@ATTEMPT`` (sleep forever after heartbeats started), ``silent=RANK@ATTEMPT`` (never send
a first heartbeat), ``stuck_before_init=RANK@ATTEMPT`` (never connect to the monitor),
``stuck_at_exit=RANK@ATTEMPT`` (never exit after shutting monitoring down), ``crash=RANK@ATTEMPT`` (exit 13), ``steps=N``, ``step_time=S``. Each rank writes
``rank<R>.attempt<A>.json`` (steps done, pid, fault-tolerance settings seen) to the output directory.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def _matches(spec: str | None, rank: int, attempt: int) -> bool:
    if not spec:
        return False
    for item in spec.split("+"):
        r, _, a = item.partition("@")
        if int(r) == rank and (a in ("", "*") or int(a) == attempt):
            return True
    return False


def run(options: dict[str, str], out_dir: Path, ft_seen: dict | None = None) -> int:
    import torch
    import torch.distributed as dist

    from ft.client.monitor_client import RankMonitorClient

    rank = int(os.environ["RANK"])
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"rank": rank, "attempt": attempt, "pid": os.getpid(), "steps": 0, "ft_cfg": ft_seen,
              "world_size": int(os.environ["WORLD_SIZE"]), "stopped": False}
    path = out_dir / f"rank{rank}.attempt{attempt}.json"

    def save() -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)

    stop = {"requested": False}
    if options.get("sigterm") == "75":
        signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    dist.init_process_group("gloo")
    if _matches(options.get("stuck_before_init"), rank, attempt):
        _stuck_before_init()
    client = RankMonitorClient()
    client.init_workload_monitoring()
    record["monitor_cfg"] = client.config.to_dict() if client.config else None
    save()
    if _matches(options.get("silent"), rank, attempt):
        time.sleep(3600)
    steps = int(options.get("steps", "5"))
    step_time = float(options.get("step_time", "0.05"))
    tensor = torch.ones(1)
    for step in range(1, steps + 1):
        if _matches(options.get("crash"), rank, attempt) and step == 2:
            os._exit(13)
        if _matches(options.get("hang"), rank, attempt) and step == 2:
            time.sleep(3600)
        dist.all_reduce(tensor)
        client.send_heartbeat()
        record["steps"] = step
        if step == 1:
            record["first_step_time"] = time.time()
        save()
        flag = torch.tensor([1.0 if stop["requested"] else 0.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() > 0:
            record["stopped"] = True
            save()
            client.shutdown_workload_monitoring()
            dist.destroy_process_group()
            return 75
        time.sleep(step_time)
    client.shutdown_workload_monitoring()
    dist.destroy_process_group()
    record["finished"] = True
    record["done_time"] = time.time()
    save()
    if _matches(options.get("stuck_at_exit"), rank, attempt):
        _stuck_at_exit()
    return 0


def _stuck_before_init() -> None:
    time.sleep(3600)


def _stuck_at_exit() -> None:
    time.sleep(3600)


def parse(argv: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in argv if "=" in item)


if __name__ == "__main__":
    sys.exit("import this module")
