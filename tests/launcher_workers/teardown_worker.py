"""A 2-rank DDP worker that reports whether its destroyed process group is kept until the process exits.

Argument ``out=DIR``. Writes ``teardown.r<rank>.json``: whether ``torch._dynamo`` was imported before
the script ran (the fork server preloads it), and whether the default group is among the groups a
forked worker keeps after ``destroy_process_group()`` (``launcher.workers.group_lifetime``), so that the
DDP Reducer, dropped after it, is never the group's last owner; and whether the launcher hosted the
store it connected to (``TORCHELASTIC_USE_AGENT_STORE``).
"""

import gc
import json
import os
import sys
from pathlib import Path

DYNAMO_PRELOADED = "torch._dynamo" in sys.modules

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402


def main(out: Path) -> int:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = DistributedDataParallel(torch.nn.Linear(8, 2))
    for _ in range(3):
        model(torch.randn(4, 8)).sum().backward()
    world = dist.group.WORLD
    dist.destroy_process_group()
    del model
    gc.collect()
    keeper = sys.modules.get("launcher.workers.group_lifetime")
    kept = any(group is world for group in getattr(keeper, "_kept", ()))
    report = {"dynamo_preloaded": DYNAMO_PRELOADED, "kept": kept, "keeper_loaded": keeper is not None,
              "agent_store": os.environ.get("TORCHELASTIC_USE_AGENT_STORE")}
    (out / f"teardown.r{rank}.json").write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    options = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    sys.exit(main(Path(options["out"])))
