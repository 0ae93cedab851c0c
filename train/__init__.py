"""The reusable fault-tolerant DDP training loop: ``train.run(cfg)``."""

from ft import FaultToleranceConfig, FaultToleranceConfigError, register_configs

register_configs()

# Exceptions that mean "the user gave bad input": train.py reports them in one line, exit code 2.
USER_ERRORS: tuple[type[Exception], ...] = (FaultToleranceConfigError,)


def run(cfg) -> None:  # replaced by the loop
    FaultToleranceConfig.from_mapping(cfg.fault_tolerance)
