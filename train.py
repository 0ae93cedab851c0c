"""Entry point a user runs and forks: `ft_launcher --standalone --nproc-per-node=2 train.py`."""

import logging
import os
import sys

import hydra
from omegaconf import DictConfig


def _import_train_package():
    """``import train``, the package: beside a copy of this file with no ``train/`` next to it, the
    script's own directory on ``sys.path`` would import this file instead. The path is restored after,
    so modules beside the script (a fork's own) still import."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isfile(os.path.join(here, "train", "__init__.py")):
        import train
        return train
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        import train
    finally:
        sys.path[:] = saved
    return train


train = _import_train_package()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train; returns ``trainer.optimized_metric``'s final value (for a sweeper), None when unset."""
    train.warn_if_unwatched_sweep()
    try:
        code = train.run(cfg)
        value = None if code else train.optimized_value(cfg)
    except train.USER_ERRORS as exc:  # a mistake the user can fix: one line, no traceback
        # Every rank sees the same mistake: rank 0 says it, the others keep it in their log file.
        level = logging.ERROR if train.rank_from_env() == 0 else logging.INFO
        logging.getLogger("train").log(level, "%s", exc)
        sys.exit(2)
    except train.CANNOT_HELP_ERRORS as exc:  # a non-finite loss: a restart would diverge again (exit 93)
        level = logging.ERROR if train.rank_from_env() == 0 else logging.INFO
        logging.getLogger("train").log(level, "%s", exc)
        sys.exit(train.ExitCode.RESTART_CANNOT_HELP)
    except train.UNHEALTHY_NODE_ERRORS as exc:  # a straggler stopped on purpose: run the job elsewhere (exit 69)
        level = logging.ERROR if train.rank_from_env() == 0 else logging.INFO
        logging.getLogger("train").log(level, "%s", exc)
        sys.exit(train.ExitCode.NODE_UNHEALTHY)
    except train.RETRYABLE_ERRORS as exc:  # e.g. an I/O error reading a checkpoint: a restart may cure it
        logging.getLogger("train").error("%s", exc)
        sys.exit(1)
    if code:  # 75: stopped on request with a checkpoint saved; relaunch with the same run dir
        sys.exit(code)
    return value


if __name__ == "__main__":
    main()
