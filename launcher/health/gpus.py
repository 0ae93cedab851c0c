"""GPU health checks for ``trainer.device=cuda``: CUDA sees GPUs, and NVML (when ``pynvml`` imports) calls them healthy."""

from __future__ import annotations

import logging
import os
from typing import Any

from ft.shared.devices import DEVICE_KEY, visible_gpus
from launcher.health.problems import CheckFailed

log = logging.getLogger("launcher")
_TODO = "reset or drain the GPU (nvidia-smi -q names it), or run on another node"


def check_gpus_visible() -> None:
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible_gpus() == 0:
        where = f" (CUDA_VISIBLE_DEVICES={shown})" if shown is not None else ""
        raise CheckFailed("gpus", f"{DEVICE_KEY}=cuda but CUDA sees no GPU{where}",
                          "check the driver (nvidia-smi) and the allocation's GPUs, or run on another node")


def _handles(nvml: Any) -> list[tuple[str, Any]]:
    """The NVML handles of the GPUs this process may use (CUDA_VISIBLE_DEVICES by index or UUID, else all)."""
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    if shown is None or not shown.strip():
        return [(str(i), nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(nvml.nvmlDeviceGetCount())]
    handles = []
    for item in (part.strip() for part in shown.split(",")):
        if item.isdigit():
            handles.append((item, nvml.nvmlDeviceGetHandleByIndex(int(item))))
        elif item:
            handles.append((item, nvml.nvmlDeviceGetHandleByUUID(item)))
    return handles


def _problem(nvml: Any, handle: Any) -> str | None:
    """What NVML says is wrong with one GPU, or None (queries a GPU does not support are skipped)."""
    try:
        _corrected, _uncorrected, pending, failed = nvml.nvmlDeviceGetRemappedRows(handle)
        if failed:
            return "a memory row remapping failed"
        if pending:
            return "memory row remapping is pending (the GPU needs a reset)"
    except nvml.NVMLError:
        pass
    try:
        if nvml.nvmlDeviceGetRetiredPagesPendingStatus(handle):
            return "retired memory pages are pending (the GPU needs a reset)"
    except nvml.NVMLError:
        pass
    return None


def check_nvml() -> None:
    """Every visible GPU answers NVML and reports no pending or failed memory repair; skipped without pynvml."""
    try:
        import pynvml as nvml
    except ImportError:
        log.debug("health: pynvml is not installed (pulsetrain[nvml]); NVML GPU health not checked")
        return
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise CheckFailed("nvml", f"NVML cannot start ({exc})", _TODO) from None
    try:
        try:
            handles = _handles(nvml)
        except nvml.NVMLError as exc:
            raise CheckFailed("nvml", f"a visible GPU does not answer NVML ({exc})", _TODO) from None
        for name, handle in handles:
            problem = _problem(nvml, handle)
            if problem is not None:
                raise CheckFailed("nvml", f"GPU {name}: {problem}", _TODO)
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass
