"""A worker that joins its process group as train.run does (train.distributed.setup, the attempt's
store prefix), for the two-node restart test: ``out=DIR``.

In its first attempt, a rank whose node enforces a short heartbeat timeout (under 10 s) hangs
without heartbeats, and every other rank stays busy outside any collective, sending heartbeats:
its node sees no failure of its own, only the other node waiting at the rendezvous. (Which node
gets which global rank is the rendezvous's choice, so the node's timeout picks the rank to hang.) In a later attempt all ranks run a few all-reduces.
Each rank records ``rank<R>.attempt<A>.json`` (A: this node's restart count).
"""

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ft.client.monitor_client import RankMonitorClient
from train.distributed import setup


def main(options: dict[str, str]) -> int:
    out = Path(options["out"])
    out.mkdir(parents=True, exist_ok=True)
    rank, attempt = int(os.environ["RANK"]), int(os.environ["TORCHELASTIC_RESTART_COUNT"])
    record = {"rank": rank, "attempt": attempt, "pid": os.getpid(), "steps": 0}
    ctx = setup(float(options.get("dist_timeout", "30")))  # a stalled join fails after this, not 30 min
    client = RankMonitorClient()
    client.init_workload_monitoring()
    first = out / f"started-rank{rank}"  # per rank: no race with the other node's ranks
    if not first.exists():
        first.touch()
        if (client.hb_timeouts.subsequent or float("inf")) < 10:
            client.send_heartbeat()  # from now on rank_heartbeat_timeout applies, not the initial one
            time.sleep(3600)
        while True:  # busy outside collectives until its node restarts it
            client.send_heartbeat()
            time.sleep(0.05)
    tensor = torch.ones(1)
    for step in range(1, 6):
        dist.all_reduce(tensor)
        client.send_heartbeat()
        record["steps"] = step
    record.update(finished=True, world_size=ctx.world_size, sum=tensor.item())
    (out / f"rank{rank}.attempt{attempt}.json").write_text(json.dumps(record))
    client.shutdown_workload_monitoring()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(item.split("=", 1) for item in sys.argv[1:] if "=" in item)))
