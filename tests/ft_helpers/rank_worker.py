"""A rank process for the ft tests: runs JSON commands from stdin, answers each with one JSON line.

torch is imported only for the commands that need a process group, so monitor tests that do not
need one start in a fraction of a second. While it waits for a command, the rank sends no
heartbeats: from the monitor's point of view it hangs, blocked in ``wait_for_command``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any

from ft import RankMonitorClient

client = RankMonitorClient()


def timeouts() -> dict[str, Any]:
    return dataclasses.asdict(client.hb_timeouts) | {"are_valid": client.hb_timeouts.are_valid}


def run(cmd: dict[str, Any]) -> Any:
    global client
    name = cmd["cmd"]
    if name == "pg":
        from datetime import timedelta

        import torch.distributed as dist

        dist.init_process_group("gloo", timeout=timedelta(seconds=60))
        return {"rank": dist.get_rank(), "world": dist.get_world_size()}
    if name == "new_client":
        client = RankMonitorClient()
        return None
    if name == "init":
        client.init_workload_monitoring()
        return {"monitored": client.is_monitored, "rank": client.rank, "timeouts": timeouts()}
    if name == "beat":
        # Heartbeats ``n`` times, ``every`` seconds apart; ``pause`` adds one longer gap after the first.
        for i in range(cmd.get("n", 1)):
            client.send_heartbeat()
            if i == 0 and cmd.get("pause"):
                time.sleep(cmd["pause"])
            elif cmd.get("every"):
                time.sleep(cmd["every"])
        return None
    if name == "beat_for":
        end = time.monotonic() + cmd["seconds"]
        beats = 0
        while time.monotonic() < end:
            client.send_heartbeat()
            beats += 1
            if cmd["every"]:  # 0: back to back
                time.sleep(cmd["every"])
        return beats
    if name == "calibrate":
        done = client.calculate_and_set_hb_timeouts(skip_if_not_ready=cmd.get("skip", False))
        return {"set": done, "timeouts": timeouts()}
    if name == "section":  # start or end one section, or end all: {"op": "start"|"end"|"end_all", "name": ...}
        {"start": client.start_section, "end": client.end_section}.get(cmd["op"], lambda _: client.end_all_sections())(
            cmd.get("name"))
        if cmd.get("hold"):
            time.sleep(cmd["hold"])
        return None
    if name == "calibrate_sections":
        done = client.calculate_and_set_section_timeouts(
            selected_sections=cmd.get("selected"), calc_out_of_section=cmd.get("out", True))
        return {"set": done, "timeouts": dataclasses.asdict(client.section_timeouts)}
    if name == "state":
        return client.state_dict()
    if name == "load":
        client.load_state_dict(cmd["state"])
        return timeouts()
    if name == "timeouts":
        return timeouts()
    if name == "shutdown":
        client.shutdown_workload_monitoring()
        return None
    if name == "pid":
        return os.getpid()
    if name == "exit":
        sys.stdout.flush()
        os._exit(cmd.get("code", 0))
    raise ValueError(f"unknown command {name!r}")


def wait_for_command() -> str:
    return sys.stdin.readline()


def main() -> None:
    while True:
        line = wait_for_command()
        if not line:
            return
        cmd = json.loads(line)
        try:
            reply = {"ok": True, "result": run(cmd)}
        except Exception as exc:
            reply = {"ok": False, "type": type(exc).__name__, "error": str(exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
