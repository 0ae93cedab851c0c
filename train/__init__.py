"""The reusable fault-tolerant DDP training loop: ``train.run(cfg)`` (see docs/training.md)."""

from typing import Any

from ft import ExitCode, FaultToleranceConfigError, MetricNotFoundError, rank_from_env, register_configs
from train.config.resolvers import register_resolvers
from train.config.schema import register_train_schemas
from train.errors import (
    CheckpointError,
    CheckpointReadError,
    NonFiniteError,
    StragglerError,
    TrainConfigError,
)
from train.sweeps import optimized_value, warn_if_unwatched_sweep

# Before @hydra.main composes: the schemas behind conf/fault_tolerance, trainer and checkpoint, the
# resolvers conf/ uses.
register_configs()
register_train_schemas()
register_resolvers()


def __getattr__(name: str) -> Any:
    """``train.run`` and ``train.Supervised`` on first use: the loop loads torch, which the config schemas do not need."""
    if name == "run":
        from train.loop import run

        return run
    if name == "Supervised":
        from train.objective import Supervised

        return Supervised
    raise AttributeError(f"module 'train' has no attribute {name!r}")


# Exceptions that mean "the user gave bad input": train.py reports them in one line, exit code 2.
USER_ERRORS: tuple[type[Exception], ...] = (FaultToleranceConfigError, TrainConfigError, CheckpointError,
                                             MetricNotFoundError)
# Failures a restart may cure: one line, exit code 1 (ft_launcher restarts while its budget lasts).
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (CheckpointReadError,)
# Failures a restart would only repeat (a non-finite loss): one line, exit code 93 (ExitCode.RESTART_CANNOT_HELP).
CANNOT_HELP_ERRORS: tuple[type[Exception], ...] = (NonFiniteError,)
# This node is the problem (a straggler stopped by trainer.on_straggler=stop): exit code 69 (ExitCode.NODE_UNHEALTHY).
UNHEALTHY_NODE_ERRORS: tuple[type[Exception], ...] = (StragglerError,)

__all__ = ["CANNOT_HELP_ERRORS", "RETRYABLE_ERRORS", "UNHEALTHY_NODE_ERRORS", "USER_ERRORS", "CheckpointError",
           "CheckpointReadError", "ExitCode", "NonFiniteError", "StragglerError", "TrainConfigError",
           "Supervised", "optimized_value", "rank_from_env", "run",
           "warn_if_unwatched_sweep"]
