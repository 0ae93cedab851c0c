"""Files readers may open at any moment: replaced in one rename, flushed to disk before it."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (the directory entry itself reaches the disk)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float, at any depth, as ``None``: JSON ``null``.

    A bare ``NaN`` is not JSON (strict parsers refuse it, ``jq`` reads it as null): every file the
    project writes stays valid JSON, a diverged run's loss included.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Mapping[str, Any], *, sort_keys: bool = False) -> None:
    """Replace ``path`` with ``data`` as JSON in one rename: readers see the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with tmp.open("w") as f:
        json.dump(json_safe(data), f, indent=1, sort_keys=sort_keys, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
