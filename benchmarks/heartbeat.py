"""Heartbeat cost and monitor load: send_heartbeat() latency, monitor CPU with 2/8/32 ranks, detections.

Run: .venv/bin/python benchmarks/heartbeat.py   (about 30 s on 2 cores)

1. send_heartbeat() on a monitored client (a RankMonitor in this process), each call timed
   alone with perf_counter_ns; the timer's own cost is shown beside it.
2. 2, 8 and 32 ranks heartbeating at 100 Hz for a few seconds. The ranks are light processes
   that import ft only (no torch, which would not fit 32 times on 2 cores), using the real
   client and shared memory. Monitor CPU is the CPU time of the monitor's thread
   (pthread CPU clock) per wall second. Any event during this phase is a false detection. Then
   every rank stops beating (stays alive): each must be reported once, within timeout + interval.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ft import FaultToleranceConfig, RankMonitor, RankMonitorClient  # noqa: E402

CALLS = 200_000
RANK_COUNTS = (2, 8, 32)
BEAT_PERIOD = 0.01
LOAD_SECONDS = 4.0
TIMEOUT = 1.0
INTERVAL = 0.25


def rank_worker() -> None:
    """One rank: beat every BEAT_PERIOD until stdin says 'hang', then beat no more."""
    client = RankMonitorClient()
    client.init_workload_monitoring()
    hang = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), hang.set()), daemon=True).start()
    print("ready", flush=True)
    while not hang.wait(BEAT_PERIOD):
        client.send_heartbeat()
    time.sleep(3600)  # hung: the monitor must notice


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def heartbeat_latency(monitor: RankMonitor) -> tuple[float, float, float]:
    os.environ.update(monitor.worker_env())
    client = RankMonitorClient()
    client.init_workload_monitoring()
    send, clock = client.send_heartbeat, time.perf_counter_ns
    samples, empty = [0] * CALLS, [0] * CALLS
    for i in range(CALLS):
        start = clock()
        send()
        samples[i] = clock() - start
    for i in range(CALLS):
        start = clock()
        empty[i] = clock() - start
    client.shutdown_workload_monitoring()
    return statistics.median(samples) / 1e3, percentile(samples, 0.99) / 1e3, statistics.median(empty) / 1e3


def thread_cpu_seconds(thread: threading.Thread) -> float:
    """CPU time of one thread of this process, with nanosecond resolution."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def monitor_load(ranks: int) -> dict[str, float]:
    config = FaultToleranceConfig(
        initial_rank_heartbeat_timeout=30.0, rank_heartbeat_timeout=TIMEOUT, workload_check_interval=INTERVAL
    )
    with RankMonitor(config) as monitor:
        env = {**os.environ, **monitor.worker_env(), "PYTHONPATH": str(ROOT)}
        procs = []
        try:
            for rank in range(ranks):
                procs.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "--rank-worker"],
                        env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(ranks)},
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                    )
                )  # fmt: skip
            for proc in procs:
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            thread = monitor._thread  # the single monitor thread (stack capture runs only on hangs)
            assert thread is not None
            cpu0, wall0 = thread_cpu_seconds(thread), time.monotonic()
            false_events = []
            deadline = wall0 + LOAD_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                try:
                    false_events.append(monitor.events.get(timeout=left))
                except queue.Empty:
                    break
            cpu = (thread_cpu_seconds(thread) - cpu0) / (time.monotonic() - wall0)
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("hang\n")
                proc.stdin.flush()
            found, stacks = {}, 0
            end = time.monotonic() + TIMEOUT + INTERVAL + 5
            while len(found) < ranks and time.monotonic() < end:
                try:
                    event = monitor.events.get(timeout=end - time.monotonic())
                except queue.Empty:
                    break
                if event.kind == "heartbeat_timeout" and event.rank not in found:
                    found[event.rank] = event.gap
                    stacks += event.stack_file is not None
                else:
                    false_events.append(event)
            late = [gap for gap in found.values() if gap > TIMEOUT + INTERVAL]
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    return {
        "cpu": cpu,
        "false": len(false_events),
        "missed": ranks - len(found),
        "late": len(late),
        "stacks": stacks,
        "max_over": max(found.values(), default=float("nan")) - TIMEOUT,
    }


def main() -> None:
    logging.getLogger("ft").addHandler(logging.NullHandler())  # the table says it all
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rank-worker", action="store_true", help=argparse.SUPPRESS)
    if parser.parse_args().rank_worker:
        rank_worker()
        return
    with RankMonitor(FaultToleranceConfig()) as monitor:
        median, p99, timer = heartbeat_latency(monitor)
    print(f"send_heartbeat(), monitored, {CALLS:,} calls each timed alone:")
    print(f"  median {median:6.2f} us   p99 {p99:6.2f} us   (timer alone: median {timer:.2f} us)")
    print()
    print(f"monitor under load: ranks beat every {BEAT_PERIOD * 1e3:g} ms for {LOAD_SECONDS:g} s, then all hang;")
    print(f"rank_heartbeat_timeout {TIMEOUT:g} s, workload_check_interval {INTERVAL:g} s;")
    print("each rank is a light process using the real client (imports ft, not torch)")
    print(f"{'ranks':>5} | {'monitor CPU':>11} | {'false':>5} | {'missed':>6} | {'late':>4} | "
          f"{'stacks':>6} | {'worst gap - timeout':>19}")  # fmt: skip
    print(f"{'-' * 5}-+-{'-' * 11}-+-{'-' * 5}-+-{'-' * 6}-+-{'-' * 4}-+-{'-' * 6}-+-{'-' * 19}")
    for ranks in RANK_COUNTS:
        r = monitor_load(ranks)
        print(
            f"{ranks:>5} | {r['cpu'] * 100:>10.3f}% | {r['false']:>5} | {r['missed']:>6} | {r['late']:>4} | "
            f"{r['stacks']:>6} | {r['max_over']:>17.3f} s"
        )
    print("\nmonitor CPU: CPU time of the monitor thread per wall-clock second (100% = one core).")
    print("false: events while every rank was beating; missed: hung ranks never reported;")
    print(f"late: reported with a gap above timeout + interval ({TIMEOUT + INTERVAL:g} s);")
    print("stacks: hung ranks reported with their Python stacks captured.")


if __name__ == "__main__":
    main()
