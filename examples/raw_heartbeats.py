"""The heartbeats API in a plain DDP script (no Hydra): the six calls a training loop needs.

    ft_launcher --standalone --nproc-per-node=2 examples/raw_heartbeats.py    # hangs detected
    torchrun --standalone --nproc-per-node=2 examples/raw_heartbeats.py       # no monitor: warns once
    python examples/raw_heartbeats.py                                         # one rank, no monitor

Run it twice: the second run resumes from the checkpoint, calibrated timeouts included, and is
protected by them from its first step. Code written for NVIDIA's nvidia-resiliency-ext
heartbeats API needs only its import changed to run here.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ft import RankMonitorClient

log = logging.getLogger("raw_heartbeats")


def parse_args() -> argparse.Namespace:
    run_dir = Path(os.environ.get("PULSETRAIN_RUN_DIR", "outputs/raw_heartbeats"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="train until this global step")
    parser.add_argument("--save-every", type=int, default=10)
    parser.add_argument("--calibrate-after", type=int, default=15,
                        help="steps into each run; put it after the first checkpoint save")  # fmt: skip
    parser.add_argument("--checkpoint", type=Path, default=run_dir / "checkpoint.pt")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: one GPU per local rank when CUDA is available, else CPU")
    return parser.parse_args()


def init_distributed(requested: str) -> torch.device:
    if "RANK" not in os.environ:  # plain `python`: a group of one, so the same code path runs
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if requested == "cpu" or (requested == "auto" and gpus == 0):
        dist.init_process_group("gloo")
        return torch.device("cpu")
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if local_ranks > gpus:  # every rank of the node stops alike, before NCCL fails on the missing GPU
        fix = f"use --nproc-per-node={gpus}, or " if gpus else ""
        sys.stderr.write(f"raw_heartbeats: {local_ranks} rank(s) on this node but {gpus} GPU(s) visible; "
                         f"{fix}--device=cpu to train on CPU\n")
        sys.exit(2)
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl")
    return torch.device("cuda", torch.cuda.current_device())


def save_checkpoint(path: Path, state: dict) -> None:
    """Rank 0 only; atomic (write then rename) so a crash mid-save leaves the previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    device = init_distributed(args.device)
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(16, 1).to(device))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    checkpoint = None
    if args.checkpoint.exists():
        checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        model.module.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    start = checkpoint["step"] if checkpoint else 0

    client = RankMonitorClient()
    if checkpoint and "ft" in checkpoint:
        # (2) restore calibrated timeouts; before init they take effect at init
        client.load_state_dict(checkpoint["ft"])
    # (1) connect to the monitor ft_launcher runs (or warn once and run unmonitored)
    client.init_workload_monitoring()
    log.info("rank %d: monitored=%s, timeouts %s", rank, client.is_monitored, client.hb_timeouts)

    for step in range(start + 1, args.steps + 1):
        generator = torch.Generator().manual_seed(step * 1000 + rank)
        inputs = torch.randn(32, 16, generator=generator).to(device)
        loss = (model(inputs) - inputs.sum(dim=1, keepdim=True)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # (3) one heartbeat per step
        client.send_heartbeat()
        if step == start + args.calibrate_after:
            # (4) collective: every rank at the same step, after the first checkpoint save, so the
            # longest measured gap includes a save (no heartbeats are sent while saving)
            client.calculate_and_set_hb_timeouts()
        if step % args.save_every == 0 or step == args.steps:
            state = {
                "step": step,
                "model": model.module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ft": client.state_dict(),  # (5) the calculated timeouts travel with the checkpoint
            }
            if rank == 0:
                save_checkpoint(args.checkpoint, state)
            dist.barrier()
        if rank == 0 and step % 10 == 0:
            log.info("step %d loss %.4f", step, loss.item())

    log.info("rank %d: finished at step %d, timeouts %s", rank, args.steps, client.hb_timeouts)
    # (6) no timeout fires for this rank after this
    client.shutdown_workload_monitoring()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
