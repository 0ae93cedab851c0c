"""The CUDA tests (marker ``cuda``): skipped with a reason where no CUDA GPU is visible.

``make gpu-check`` runs them on a GPU machine; each test's outcome and what it measured go to the
JSON-lines file named by ``PULSETRAIN_GPU_CHECK_RECORD`` (when set), which the driver turns into a table.
"""

from __future__ import annotations

import json
import os

import pytest
from gpu_jobs import GPUS, Job

RECORD_ENV = "PULSETRAIN_GPU_CHECK_RECORD"
NO_GPU = "no CUDA GPU is visible (make gpu-check runs these on a GPU machine)"


def _append(entry: dict) -> None:
    path = os.environ.get(RECORD_ENV)
    if path:
        with open(path, "a") as stream:
            stream.write(json.dumps(entry) + "\n")


def pytest_collection_modifyitems(config, items):
    if GPUS:
        return
    skip = pytest.mark.skip(reason=NO_GPU)
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        detail = report.longreprtext[-1500:] if report.failed else ""
        if report.skipped and isinstance(report.longrepr, tuple):
            detail = report.longrepr[2]
        _append({"test": report.nodeid, "when": report.when, "outcome": report.outcome,
                 "seconds": round(report.duration, 2), "detail": detail})


@pytest.fixture
def record(request):
    """``record(setup=..., **numbers)``: what the test ran on and measured, for gpu-check's table."""
    def _record(**numbers) -> None:
        _append({"test": request.node.nodeid, "numbers": numbers})
    return _record


@pytest.fixture
def jobs():
    """``jobs(argv, out=None, env=None)`` -> a started :class:`gpu_jobs.Job`; every one is ended after the test."""
    started: list[Job] = []

    def _start(argv: list[str], out=None, env=None) -> Job:
        job = Job(argv, out, env)
        started.append(job)
        return job

    yield _start
    for job in started:
        job.close()
