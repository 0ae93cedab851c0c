"""``train.py`` with deterministic CUDA algorithms on, for the exact-resume test (``CUBLAS_WORKSPACE_CONFIG``
must be set in the environment before CUDA starts). Run it with ``--config-path <repo>/conf --config-name train``."""

import runpy
import sys
from pathlib import Path

import torch

TRAIN = Path(__file__).resolve().parents[3] / "train.py"

torch.use_deterministic_algorithms(True)
torch.backends.cudnn.benchmark = False
sys.argv[0] = str(TRAIN)
runpy.run_path(str(TRAIN), run_name="__main__")
