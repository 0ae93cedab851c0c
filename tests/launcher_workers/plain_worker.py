"""A non-Hydra worker: ``key=value`` arguments (see behaviour.py); writes to ``out=DIR``."""

import sys
from pathlib import Path

import behaviour

if __name__ == "__main__":
    options = behaviour.parse(sys.argv[1:])
    sys.exit(behaviour.run(options, Path(options["out"])))
