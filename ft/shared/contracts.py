"""The names several parts agree on: exit codes and their meaning, section names, metric events, environment.

One definition each, imported by the loop, the launcher, the sweep runner and the Hydra plugin; the
exit-code table in ``docs/reliability.md`` is ``exit_code_table()``'s output (a test holds them equal).
"""

from __future__ import annotations

import enum
import os
import signal


class ExitCode(enum.IntEnum):
    """How a job (or a sweep) ended, as a batch script reads it from ``$?``."""

    FINISHED = 0
    FAILED = 1
    USAGE_ERROR = 2
    # This node cannot run the job (a failed health check, a straggler stopped on purpose): run it
    # elsewhere. 69 is EX_UNAVAILABLE from sysexits.h.
    NODE_UNHEALTHY = 69
    # 75 is EX_TEMPFAIL from sysexits.h: "try again later".
    STOPPED_ON_REQUEST = 75
    # Restarting cannot help: the same failure would come back (no progress over several attempts,
    # the same failure twice, a non-finite loss). 93 is the code NVIDIA's launcher gives the same
    # meaning, so batch scripts written for it keep working.
    RESTART_CANNOT_HELP = 93

    @property
    def meaning(self) -> str:
        return _MEANINGS[self][0]

    @property
    def action(self) -> str:
        """What a batch script should do on this code."""
        return _MEANINGS[self][1]

    @classmethod
    def describe(cls, code: int | None) -> str:
        """The words the launcher's last line uses for ``code`` ("ended" for a code of no known meaning)."""
        try:
            return _MEANINGS[cls(code)][0]
        except ValueError:
            return "ended"


_MEANINGS: dict[ExitCode, tuple[str, str]] = {
    ExitCode.FINISHED: ("finished", "nothing: the job reached its last step"),
    ExitCode.FAILED: ("failed", "the restart budget is spent or the rendezvous failed: read the log; "
                                "requeue only if the cause was transient (the checkpoints stay)"),
    ExitCode.USAGE_ERROR: ("failed on bad configuration or input",
                           "do not requeue: fix the flag, config key or file the message names"),
    ExitCode.NODE_UNHEALTHY: ("stopped: this node is unhealthy",
                              "requeue on other nodes (exclude this one); the log names the check that failed"),
    ExitCode.RESTART_CANNOT_HELP: ("stopped: restarting cannot help",
                                   "do not requeue as is: fix what the log names (a step that fails every time, "
                                   "the lr behind a non-finite loss), then relaunch with the same run directory"),
    ExitCode.STOPPED_ON_REQUEST: ("stopped on request (relaunch with the same run directory to continue)",
                                  "requeue with the same run directory: it resumes from the newest checkpoint "
                                  "(the stop checkpoint, unless a rank was hung or a second signal said kill)"),
}


def exit_code_table() -> str:
    """The Markdown table of exit codes, derived from ``ExitCode`` (pasted into ``docs/reliability.md``)."""
    rows = ["| code | name | meaning | what a batch script does |", "|---|---|---|---|"]
    rows += [f"| `{c.value}` | `{c.name}` | {c.meaning} | {c.action} |" for c in ExitCode]
    return "\n".join(rows)


class _Name(str, enum.Enum):
    """A name that is its string everywhere: in f-strings, ``str()``, JSON and on the wire (on every Python)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Section(_Name):
    """The sections the template's loop opens (NVIDIA's section API): one timeout each."""

    INIT = "init"  # process group, model, data, resume: until the first step
    STEP = "step"
    CHECKPOINT = "checkpoint"
    VALIDATION = "validation"


class MetricEvent(_Name):
    """Rows of ``metrics.jsonl`` that mark something that happened, not a measured value (``{"event": ...}``)."""

    ATTEMPT_START = "attempt_start"
    FAULT_INJECTED = "fault_injected"
    CHECKPOINT = "checkpoint"
    STOPPED_ON_REQUEST = "stopped_on_request"
    STRAGGLER = "straggler"  # a rank named slower than the others (train/stragglers.py)


# Environment variables ft_launcher sets for its workers (beside torchrun's own).
ENDPOINT_ENV = "PULSETRAIN_FT_ENDPOINT"  # the monitor's socket, in a directory only the job's user can open
STACK_FILE_ENV = "PULSETRAIN_FT_STACK_FILE"  # where a rank's faulthandler writes its stacks
STOP_SIGNALS_ENV = "PULSETRAIN_STOP_SIGNALS"  # signals, besides SIGTERM, that ask for a clean stop
ATTEMPT_ID_ENV = "PULSETRAIN_ATTEMPT_ID"  # the attempt number all nodes agreed on
RUN_DIR_ENV = "PULSETRAIN_RUN_DIR"  # the run directory the launcher resolved once
NO_FORK_SERVER_ENV = "PULSETRAIN_NO_FORK_SERVER"  # set (to anything) to start workers as plain processes
RESTART_COUNT_ENV = "TORCHELASTIC_RESTART_COUNT"  # elastic's own count of this node's restarts
# A file ft_launcher appends this node's name to when a health check fails (exit 69): set by the batch script.
UNHEALTHY_NODES_FILE_ENV = "PULSETRAIN_UNHEALTHY_NODES_FILE"

# Asks a rank for its Python stacks (faulthandler, registered by each rank at init): reserved for this.
STACK_SIGNAL = signal.SIGUSR2


def rank_from_env() -> int:
    """This process's global rank as torchrun and ft_launcher set it (0 when run with plain ``python``)."""
    return int(os.environ.get("RANK", "0"))


def local_rank_from_env(default: int = 0) -> int:
    return int(os.environ.get("LOCAL_RANK", default))


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))
