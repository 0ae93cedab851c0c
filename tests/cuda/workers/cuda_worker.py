"""A small CUDA worker for the CUDA tests, run under ft_launcher; heartbeats through the ``ft`` API.

Arguments ``key=value``: ``out=DIR`` (required), ``mode=recover|collective|memory``, ``steps=N``.
Every rank writes ``pid.a<attempt>.r<rank>`` (so a test can clean up) and JSON records in ``DIR``.

- ``recover``: one DDP model per rank on ``cuda:LOCAL_RANK`` (NCCL); rank 0 hangs before step 3 of
  attempt 0 when ``hang=1``; writes ``first_step.a<attempt>.r<rank>`` (wall clock) and, with
  ``hold=PATH``, keeps stepping after its first step until PATH exists (so a test can inspect it).
- ``collective``: two ranks. With a GPU each, NCCL on ``cuda:LOCAL_RANK``; with one GPU (NCCL refuses
  two ranks on one device), gloo on CUDA tensors of ``cuda:0``, rank 0's stream held by a kernel
  that spins for minutes (standing in for an NCCL kernel waiting for its peer). In attempt 0, at
  step 3, rank 0 enters an all-reduce that rank 1 never enters (rank 1 keeps sending heartbeats).
- ``memory``: one rank. Attempt 0 takes ``fraction`` of the free GPU memory and stops sending
  heartbeats; attempt 1 reads the free memory before allocating anything, then takes that fraction
  of the whole card (which fits only if attempt 0's block was released).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ft import RankMonitorClient

GROUP_TIMEOUT_S = 60  # the process group's own timeout: far beyond the monitor's 2 s
SPIN_CYCLES = 10**12  # torch.cuda._sleep: ~8 minutes at 2 GHz, longer than any test waits


def write(out: Path, name: str, data: dict) -> None:
    tmp = out / f".{name}.tmp"
    tmp.write_text(json.dumps(data))
    tmp.replace(out / name)


def stop_forever(client: RankMonitorClient | None = None, keep_heartbeating: bool = False) -> None:
    """Never return; heartbeats on only when asked (a rank that is alive but never enters the collective)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if keep_heartbeating and client is not None:
            client.send_heartbeat()
        time.sleep(0.1)
    os._exit(3)


def recover(opts: dict, out: Path, rank: int, local: int, attempt: int, client: RankMonitorClient) -> None:
    device = torch.device("cuda", local)
    torch.cuda.set_device(device)  # before init_process_group: NCCL binds the current device
    dist.init_process_group("nccl", device_id=device, timeout=datetime.timedelta(seconds=GROUP_TIMEOUT_S))
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(256, 256).to(device), device_ids=[local])
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    data = torch.randn(64, 256, device=device)
    hold = Path(opts["hold"]) if opts.get("hold") else None
    step = 0
    while step < int(opts.get("steps", "20")) or (hold is not None and not hold.exists()):
        step += 1
        if opts.get("hang") == "1" and rank == 0 and attempt == 0 and step == 3:
            write(out, f"hang.a{attempt}.r{rank}", {"time": time.time()})
            stop_forever()
        optim.zero_grad()
        model(data).square().mean().backward()
        optim.step()
        torch.cuda.synchronize(device)
        client.send_heartbeat()
        if step == 1:
            write(out, f"first_step.a{attempt}.r{rank}", {"time": time.time(), "pid": os.getpid()})
        if step > 100_000:
            break
    dist.destroy_process_group()


def collective(out: Path, rank: int, local: int, attempt: int, client: RankMonitorClient) -> None:
    nccl = torch.cuda.device_count() >= 2
    device = torch.device("cuda", local if nccl else 0)
    torch.cuda.set_device(device)
    timeout = datetime.timedelta(seconds=GROUP_TIMEOUT_S)
    if nccl:
        dist.init_process_group("nccl", device_id=device, timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    value = torch.ones(1024, device=device)
    for step in range(1, 11):
        if attempt == 0 and step == 3:
            if rank == 1:
                stop_forever(client, keep_heartbeating=True)
            if not nccl:
                torch.cuda._sleep(SPIN_CYCLES)  # the device is busy with a kernel that does not end
            write(out, f"entered.a{attempt}.r{rank}", {"time": time.time(), "backend": dist.get_backend()})
            dist.all_reduce(value)
            torch.cuda.synchronize(device)  # the host waits on the stuck kernel here
            write(out, f"left.a{attempt}.r{rank}", {"time": time.time()})  # must never happen
        dist.all_reduce(value)
        torch.cuda.synchronize(device)
        client.send_heartbeat()
        if step == 1:
            write(out, f"first_step.a{attempt}.r{rank}", {"time": time.time(), "backend": dist.get_backend()})
    dist.destroy_process_group()


def memory(opts: dict, out: Path, attempt: int, client: RankMonitorClient) -> None:
    torch.cuda.set_device(0)
    free, total = torch.cuda.mem_get_info()  # first CUDA call: context created, nothing allocated yet
    record = {"free_at_start": free, "total": total, "pid": os.getpid()}
    # Attempt 1 asks for the fraction of the whole card: it fits only if attempt 0's block is gone.
    nbytes = int(float(opts.get("fraction", "0.6")) * (free if attempt == 0 else total))
    block = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    block.fill_(1)
    torch.cuda.synchronize()
    record |= {"allocated": nbytes, "free_after_alloc": torch.cuda.mem_get_info()[0]}
    write(out, f"memory.a{attempt}.r0", record)
    client.send_heartbeat()
    if attempt == 0:
        stop_forever()
    del block


def main(opts: dict) -> int:
    out = Path(opts["out"])
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    (out / f"pid.a{attempt}.r{rank}").write_text(str(os.getpid()))
    client = RankMonitorClient()
    client.init_workload_monitoring()
    mode = opts.get("mode", "recover")
    if mode == "recover":
        recover(opts, out, rank, local, attempt, client)
    elif mode == "collective":
        collective(out, rank, local, attempt, client)
    elif mode == "memory":
        memory(opts, out, attempt, client)
    else:
        raise SystemExit(f"cuda_worker: unknown mode {mode!r}")
    client.shutdown_workload_monitoring()
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)))
