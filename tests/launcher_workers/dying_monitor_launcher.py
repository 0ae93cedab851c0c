"""ft_launcher whose rank monitor thread dies once the file named by $MONITOR_DIE_FILE exists (a test fault)."""

import os
import sys
from pathlib import Path

from ft.monitor.rank_monitor import RankMonitor
from launcher.cli.entry import main

_check_deadlines = RankMonitor._check_deadlines


def _check_or_die(self) -> None:
    if Path(os.environ["MONITOR_DIE_FILE"]).exists():
        # A BaseException: the loop's per-iteration guard does not catch it, so the thread ends.
        raise SystemExit("injected fault: the monitor thread ends")
    _check_deadlines(self)


RankMonitor._check_deadlines = _check_or_die

if __name__ == "__main__":
    sys.exit(main())
