"""``make demo``: 2 ranks on CPU, a hang injected in the first attempt; watch detection, restart and resume.

Runs ``ft_launcher --standalone --nproc-per-node=2 --max-restarts=2 train.py fault_tolerance=demo
fault=hang`` from the repository root, as a user would type it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    script = REPO / "train.py"
    if not script.is_file():
        sys.stderr.write(f"demo: {script} not found; run it from a checkout of the template\n")
        return 2
    launcher = shutil.which("ft_launcher", path=str(Path(sys.executable).parent)) or "ft_launcher"
    command = [launcher, "--standalone", "--nproc-per-node=2", "--max-restarts=2", "train.py",
               "fault_tolerance=demo", "fault=hang", *sys.argv[1:]]
    sys.stderr.write("$ " + " ".join(["ft_launcher", *command[1:]]) + "\n")
    return subprocess.call(command, cwd=REPO)


if __name__ == "__main__":
    sys.exit(main())
