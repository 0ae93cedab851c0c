"""A Hydra worker whose ranks end in a way that tells who is to blame (``+fault.mode=...``).

``cannot_help``: rank 1 exits 93 (ExitCode.RESTART_CANNOT_HELP, as the loop does for a non-finite
loss) after one all-reduce; rank 0 waits for the group to be ended. ``early_exit``: rank 0 exits 0
after one all-reduce; rank 1 then fails in the next all-reduce. Each rank writes
``ranks/rank<R>.attempt<A>.json`` in the run directory when it starts.
"""

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import hydra
import torch
import torch.distributed as dist

from ft import ExitCode


@hydra.main(version_base="1.3", config_path="conf", config_name="worker")
def main(cfg) -> None:
    rank, attempt = int(os.environ["RANK"]), int(os.environ["TORCHELASTIC_RESTART_COUNT"])
    out = Path(os.environ["PULSETRAIN_RUN_DIR"]) / "ranks"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.attempt{attempt}.json").write_text(json.dumps({"rank": rank, "attempt": attempt,
                                                                        "pid": os.getpid(), "steps": 0}))
    dist.init_process_group("gloo", timeout=timedelta(seconds=20))
    tensor = torch.ones(1)
    dist.all_reduce(tensor)
    if cfg.fault.mode == "cannot_help":
        if rank == 1:
            os._exit(ExitCode.RESTART_CANNOT_HELP)
        time.sleep(60)  # ended with the group
    elif cfg.fault.mode == "early_exit":
        if rank == 0:
            os._exit(0)
        time.sleep(0.5)  # rank 0 is gone by now
        dist.all_reduce(tensor)  # fails: its peer left
    sys.exit(0)


if __name__ == "__main__":
    main()
