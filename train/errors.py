"""Errors the training loop raises for input a user can fix; train.py reports them in one line (exit 2)."""


class TrainConfigError(ValueError):
    """A training setting (trainer, checkpoint, fault, a ``_target_``) is missing or has a bad value."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used and retrying will not help: every candidate is corrupt, it was
    written by an incompatible config, or ``torch.load(weights_only=True)`` refuses what it holds."""


class CheckpointReadError(RuntimeError):
    """A checkpoint could not be read for a reason a restart may cure (I/O error, out of memory).

    train.py reports it in one line and exits 1, so ft_launcher restarts; the file is kept as it is.
    """


class NonFiniteError(RuntimeError):
    """The loss or the gradient norm became NaN or infinite: a restart would resume the last good
    checkpoint and diverge again. train.py reports it in one line and exits 93 (restarting cannot help)."""


class StragglerError(RuntimeError):
    """A rank stayed slower than the others (``trainer.on_straggler=stop``): train.py reports it in one line
    and exits 69 (``ExitCode.NODE_UNHEALTHY``), so a batch script moves the job to other nodes."""
