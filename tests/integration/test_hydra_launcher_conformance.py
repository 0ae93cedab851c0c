"""Hydra's own conformance suites for launcher plugins, run on ``hydra/launcher=ft``.

``LauncherTestSuite`` runs sweeps inside this process with a task function Hydra hands over;
``IntegrationTestSuite`` writes a small Hydra app and runs it with ``-m``, so each point there is a
real ``ft_launcher`` job. Points are kept cheap: one rank, no fork server (a tiny task is done
before a zygote would have imported torch).
"""

from __future__ import annotations

import pytest
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHEAP_POINTS = ["hydra.launcher.nproc_per_node=1", "hydra.launcher.extra_args=[--no-fork-server]"]


@pytest.mark.parametrize(("launcher_name", "overrides"), [("ft", CHEAP_POINTS)])
class TestFtLauncher(LauncherTestSuite):
    """Hydra's in-process launcher cases."""


@pytest.mark.parametrize(("task_launcher_cfg", "extra_flags"),
                         [({}, ["-m", "hydra/job_logging=disabled", "hydra/launcher=ft", *CHEAP_POINTS])])
class TestFtLauncherIntegration(IntegrationTestSuite):
    """Hydra's cases that run a generated app as a subprocess with ``-m``."""
