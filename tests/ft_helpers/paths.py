"""Where the repository's parts are, for tests and the helpers they share."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf"
LAUNCHER_WORKERS = REPO / "tests" / "launcher_workers"
