"""Refuse, before any worker starts, a job that would put more local ranks on CUDA than there are GPUs.

The rule and its message are ``ft.shared.devices``' (the loop asks the same for torchrun jobs);
the launcher asks first, knowing the rank count and the script's ``trainer.device`` up front.
"""

from __future__ import annotations

from ft.shared.devices import device_fit_problem, visible_gpus
from launcher.cli.args import UsageError


def check_device_fit(requested: str | None, nproc: int, gpus: int) -> None:
    """Raise UsageError when ``nproc`` ranks on ``requested`` (auto, cpu, cuda) cannot each have a GPU."""
    if requested is None:
        return  # not the template: the script has no such key
    problem = device_fit_problem(requested, nproc, gpus)
    if problem is not None:
        raise UsageError(problem)


def check_devices(devices: list[str | None], nproc: int) -> None:
    """Every job's ranks fit this node's GPUs (asks CUDA only when some job wants it)."""
    wanted = set(devices) - {None, "cpu"}
    gpus = visible_gpus() if wanted else 0
    for device in sorted(wanted):
        check_device_fit(device, nproc, gpus)
