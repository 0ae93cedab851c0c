"""Check the command line before anything starts: every value torchrun would only trip over later.

Each mistake is a UsageError (one line, exit 2) raised before the fork server is asked for a
worker, before the rendezvous store is opened and before the rank monitor starts. Imports no torch
unless ``--nproc-per-node=gpu`` needs it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys

from launcher.cli.args import LaunchArgs, UsageError, parse_nnodes

# Rendezvous settings elastic reads as numbers or booleans (dynamic_rendezvous, c10d backend, static).
_INT_KEYS = {"timeout", "join_timeout", "last_call_timeout", "close_timeout", "heartbeat_timeout",
             "read_timeout", "keep_alive_interval", "keep_alive_max_attempt"}
_BOOL_VALUES = {"1", "0", "true", "false", "yes", "no", "y", "n", "on", "off"}
_STD = re.compile(r"^[0-3]$|^(\d+:[0-3])(,\d+:[0-3])*$")  # torch's Std.from_str: N, or RANK:N,...


def check_inputs(args: LaunchArgs) -> int:
    """Validate what torchrun would only find out later; returns the local world size."""
    _check_script(args)
    _check_nodes(args)
    if args.max_restarts < 0:
        raise UsageError(f"--max-restarts must be >= 0, got {args.max_restarts}")
    if args.monitor_interval <= 0:
        raise UsageError(f"--monitor-interval must be > 0, got {args.monitor_interval}")
    if args.term_timeout < 0:
        raise UsageError(f"--term-timeout must be >= 0, got {args.term_timeout}")
    check_rdzv_conf(args.rdzv_conf)
    from launcher.cli.torchrun_extras import Refused, check, logs_specs_class

    try:
        check(args.ns)
        if args.logs_specs:
            logs_specs_class(args.logs_specs)
    except Refused as exc:
        raise UsageError(str(exc)) from None
    for flag, value in (("--redirects", args.redirects), ("--tee", args.tee)):
        if not _STD.match(str(value)):
            raise UsageError(f"{flag}: expected 0-3 (0 none, 1 stdout, 2 stderr, 3 both) or LOCAL_RANK:N,..., "
                             f"got {value!r}")
    nproc = local_world_size(args.nproc_per_node)
    check_local_ranks_filter(args.local_ranks_filter, nproc)
    return nproc


def _check_script(args: LaunchArgs) -> None:
    script = args.training_script
    if args.module:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as ``python -m`` does for the workers
        try:
            found = importlib.util.find_spec(script) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UsageError(f"module not found: {script}")
    elif args.no_python:
        if not (shutil.which(script) or os.path.isfile(script)):
            raise UsageError(f"program not found: {script}")
    elif not os.path.isfile(script):
        raise UsageError(f"script not found: {script}")


def _check_nodes(args: LaunchArgs) -> None:
    _, max_nodes = parse_nnodes(args.nnodes)
    if max_nodes == 1:
        return
    if args.standalone:
        raise UsageError(f"--standalone runs one node, but --nnodes={args.nnodes} asks for up to {max_nodes}; "
                         "for several nodes drop --standalone and give every node --rdzv-backend=c10d "
                         "--rdzv-endpoint=HOST:PORT --rdzv-id=JOB_ID")
    if args.rdzv_id == "none":
        raise UsageError(f"--nnodes={args.nnodes}: several nodes need --rdzv-id=JOB_ID, the same on every node "
                         "and on every relaunch: it names the run directory they all resume from")


def check_rdzv_conf(text: str) -> None:
    """``KEY=VALUE,...`` as elastic parses it, with the values elastic reads as numbers checked too."""
    for item in filter(None, (part.strip() for part in str(text).strip().split(","))):
        key, eq, value = (s.strip() for s in item.partition("="))
        if not key or not eq or not value:
            raise UsageError(f"--rdzv-conf: expected KEY=VALUE,..., got {item!r} in {text!r}")
        if key in _INT_KEYS and not (value.isdigit() and int(value) > 0):
            raise UsageError(f"--rdzv-conf: {key} must be a whole number of seconds > 0, got {value!r}")
        if key == "is_host" and value.lower() not in _BOOL_VALUES:
            raise UsageError(f"--rdzv-conf: is_host must be true or false, got {value!r}")
        if key == "store_type" and value.lower() not in ("tcp", "file"):
            raise UsageError(f"--rdzv-conf: store_type must be tcp or file, got {value!r}")


def check_local_ranks_filter(text: str, nproc: int) -> None:
    if not text:
        return
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isdigit() for p in parts):
        raise UsageError(f"--local-ranks-filter: expected local ranks like 0,1, got {text!r}")
    outside = [int(p) for p in parts if int(p) >= nproc]
    if outside:
        raise UsageError(f"--local-ranks-filter: local rank(s) {outside} do not exist with "
                         f"--nproc-per-node={nproc} (valid: 0 to {nproc - 1})")


def local_world_size(text: str) -> int:
    if str(text).isdigit():
        if int(text) < 1:
            raise UsageError(f"--nproc-per-node must be at least 1, got {text}")
        return int(text)
    if text in ("auto", "cpu"):
        return os.cpu_count() or 1
    if text == "gpu":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--nproc-per-node=gpu: CUDA is not available")
        return torch.cuda.device_count()
    raise UsageError(f"--nproc-per-node: expected a number, auto, cpu or gpu, got {text!r}")
