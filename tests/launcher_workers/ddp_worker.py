"""A tiny 2-rank DDP job for the recovery benchmark: records when each rank takes its first step.

Arguments ``key=value``: ``out=DIR``, ``steps=N``, ``hang=RANK@ATTEMPT`` (sleep forever at step 3),
``crash=RANK@ATTEMPT`` (exit 1 at step 3),
``phases=1`` (write per-phase times), ``preimport=MOD,...`` (import modules before the process group).
Heartbeats go to ft_launcher's monitor, or to NVIDIA's when that launcher runs the job.
Writes ``first_step.a<attempt>.r<rank>`` (wall-clock time of the first finished step) and
``hang.a<attempt>.r<rank>`` (when the hang began).
"""

import faulthandler
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def main(options: dict[str, str]) -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # where a stuck rank is, on demand
    phases = [("start", time.time())]
    out = Path(options["out"])
    rank = int(os.environ["RANK"])
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    hang = options.get("hang", "")
    hang_here = hang and hang.split("@") == [str(rank), str(attempt)]
    crash_here = options.get("crash", "").split("@") == [str(rank), str(attempt)]
    (out / f"pid.a{attempt}.r{rank}").write_text(str(os.getpid()))  # so a benchmark can clean up
    if options.get("preimport"):  # to study import-order effects: modules imported before the process group
        import importlib

        for name in options["preimport"].split(","):
            importlib.import_module(name)
    dist.init_process_group("gloo")
    phases.append(("init_process_group", time.time()))
    client = None
    if os.environ.get("PULSETRAIN_FT_ENDPOINT"):
        from ft.client.monitor_client import RankMonitorClient

        client = RankMonitorClient()
        client.init_workload_monitoring()
    elif os.environ.get("FT_LAUNCHER_IPC_SOCKET"):  # NVIDIA's ft_launcher (benchmarks/recovery.py --nvidia)
        from nvidia_resiliency_ext.fault_tolerance import RankMonitorClient as NvidiaClient

        client = NvidiaClient()
        client.init_workload_monitoring()
    phases.append(("monitor client", time.time()))
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(32, 4))
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    data = torch.randn(16, 32)
    for step in range(1, int(options.get("steps", "20")) + 1):
        if hang_here and step == 3:
            (out / f"hang.a{attempt}.r{rank}").write_text(repr(time.time()))
            time.sleep(3600)
        if crash_here and step == 3:
            os._exit(1)
        optim.zero_grad()
        model(data).sum().backward()
        optim.step()
        if client is not None:
            client.send_heartbeat()
        if step == 1:
            (out / f"first_step.a{attempt}.r{rank}").write_text(repr(time.time()))
            phases.append(("first step", time.time()))
            if options.get("phases"):
                text = " ".join(f"{name}={t - phases[0][1]:.3f}" for name, t in phases[1:])
                (out / f"phases.a{attempt}.r{rank}").write_text(text)
    if client is not None:
        client.shutdown_workload_monitoring()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)))
