"""The section API in a plain DDP script (no Hydra), in the style of NVIDIA's sections example.

    ft_launcher --standalone --nproc-per-node=2 --ft-cfg-path=examples/sections.yaml examples/sections.py

Sections `init`, `step` (training and validation batches) and `checkpoint` wrap the parts of the
script; each may stay open as long as `rank_section_timeouts` allows, and the gaps between them
are bounded by `rank_out_of_section_timeout`. The timeouts are calculated as the run goes (`init`
after a resume, `step` after each epoch, `checkpoint` after each save, out-of-section at the end)
and kept in a JSON file, so the next run starts with them. Code written for NVIDIA's
nvidia-resiliency-ext section API needs only its import changed to run here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ft import RankMonitorClient

log = logging.getLogger("sections")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20, help="training iterations per epoch")
    parser.add_argument("--output-dir", type=Path,
                        default=Path(os.environ.get("PULSETRAIN_RUN_DIR", "outputs/sections")))  # fmt: skip
    return parser.parse_args()


def update_timeouts(client: RankMonitorClient, sections: list[str], out_of_section: bool, path: Path) -> None:
    """Collective: calculate the named sections' timeouts, then keep the client's state on disk (rank 0)."""
    client.calculate_and_set_section_timeouts(selected_sections=sections, calc_out_of_section=out_of_section)
    if dist.get_rank() == 0:
        path.write_text(json.dumps(client.state_dict()))
    dist.barrier()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path, ft_state_path = args.output_dir / "checkpoint.pt", args.output_dir / "ft_state.json"

    client = RankMonitorClient()
    client.init_workload_monitoring()
    if ft_state_path.exists():
        client.load_state_dict(json.loads(ft_state_path.read_text()))

    client.start_section("init")
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    progress = {"epoch": 0}
    resumed = checkpoint_path.exists()
    if resumed:
        checkpoint = torch.load(checkpoint_path, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        progress = checkpoint["progress"]
    if progress["epoch"] == args.epochs:
        client.end_section("init")
        client.shutdown_workload_monitoring()
        dist.destroy_process_group()
        return
    ddp = DistributedDataParallel(model)
    client.end_section("init")
    if resumed:  # a resume does more in `init` (the checkpoint load): widen its timeout
        update_timeouts(client, ["init"], False, ft_state_path)

    for epoch in range(progress["epoch"], args.epochs):
        for i in range(args.iters):
            client.start_section("step")
            inputs = torch.randn(32, 16, generator=torch.Generator().manual_seed(epoch * 1000 + i * 10 + rank))
            loss = (ddp(inputs) - inputs.sum(dim=1, keepdim=True)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            client.end_section("step")
        update_timeouts(client, ["step"], False, ft_state_path)
        with torch.no_grad():  # validation batches are timed as `step` too
            for i in range(5):
                client.start_section("step")
                model(torch.randn(32, 16, generator=torch.Generator().manual_seed(i))).mean().item()
                client.end_section("step")
        progress["epoch"] = epoch + 1
        client.start_section("checkpoint")
        if rank == 0:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "progress": progress}
            torch.save(state, checkpoint_path.with_suffix(".tmp"))
            os.replace(checkpoint_path.with_suffix(".tmp"), checkpoint_path)
        dist.barrier()
        client.end_section("checkpoint")
        update_timeouts(client, ["checkpoint"], False, ft_state_path)
        if rank == 0:
            log.info("epoch %d done, loss %.4f, section timeouts %s", epoch, loss.item(), client.section_timeouts)

    client.end_all_sections()
    update_timeouts(client, [], True, ft_state_path)  # the out-of-section timeout, from the whole run
    log.info("rank %d: finished; section timeouts %s", rank, client.section_timeouts)
    client.shutdown_workload_monitoring()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
