"""The reusable fault-tolerant DDP training loop: ``train.run(cfg)`` (see docs/training.md)."""

from ft import FaultToleranceConfigError, register_configs
from ft.final_metrics import MetricNotFoundError
from train.errors import CheckpointError, CheckpointReadError, TrainConfigError
from train.resolvers import register_resolvers

# Before @hydra.main composes: the schema behind conf/fault_tolerance, the resolvers conf/ uses.
register_configs()
register_resolvers()

from train.loop import run  # noqa: E402  (after registration: importing it loads torch)
from train.sweeps import optimized_value, warn_if_unwatched_sweep  # noqa: E402

# Exceptions that mean "the user gave bad input": train.py reports them in one line, exit code 2.
USER_ERRORS: tuple[type[Exception], ...] = (FaultToleranceConfigError, TrainConfigError, CheckpointError,
                                             MetricNotFoundError)
# Failures a restart may cure: one line, exit code 1 (ft_launcher restarts while its budget lasts).
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (CheckpointReadError,)

__all__ = ["RETRYABLE_ERRORS", "USER_ERRORS", "CheckpointError", "CheckpointReadError", "TrainConfigError", "optimized_value", "run",
           "warn_if_unwatched_sweep"]
