"""Errors the training loop raises for input a user can fix; train.py reports them in one line (exit 2)."""


class TrainConfigError(ValueError):
    """A training setting (trainer, checkpoint, fault, a ``_target_``) is missing or has a bad value."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: every candidate is corrupt, or it was written by an incompatible config."""
