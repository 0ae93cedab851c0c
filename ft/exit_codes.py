"""Exit codes shared by the training loop and ft_launcher, so a batch script can tell outcomes apart."""

# The job reached its last step.
FINISHED = 0
# Something failed and the restart budget is spent (or the failure cannot be retried).
FAILED = 1
# Bad command line or configuration; nothing was started.
USAGE_ERROR = 2
# Stopped on request (SIGTERM/SIGINT), all ranks saved a checkpoint: requeue and relaunch with the
# same run directory to continue. 75 is EX_TEMPFAIL from sysexits.h: "try again later".
STOPPED_ON_REQUEST = 75
