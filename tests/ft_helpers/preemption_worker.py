"""A rank for the PreemptionGuard test: steps with a tiny all-reduce until the ranks agree to stop.

Prints one JSON line ``{"ready": true}`` after a few steps (so the test knows handlers are in
place), then one result line when it stops.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from ft import PreemptionGuard

MAX_STEPS = 3000


def main() -> None:
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    before = signal.getsignal(signal.SIGTERM)
    seen_at = None
    with PreemptionGuard() as guard:
        step = 0
        while step < MAX_STEPS:
            step += 1
            grad = torch.ones(4)
            dist.all_reduce(grad)  # the step's own collective, interleaved with the guard's
            time.sleep(0.01)
            if step == 5:
                print(json.dumps({"ready": True}), flush=True)
            if guard.requested and seen_at is None:
                seen_at = step
            if guard.should_stop():
                break
    result = {
        "rank": dist.get_rank(),
        "stopped_after": step,
        "seen_at": seen_at,
        "requested": guard.requested,
        "handler_restored": signal.getsignal(signal.SIGTERM) == before,
    }
    dist.barrier()
    dist.destroy_process_group()
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
