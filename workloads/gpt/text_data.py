"""Byte-level text (``data=text``): files built once into a memory-mapped token file, read as fixed windows.

The corpus is the Python standard library's own source files unless ``data.dataset.paths`` names
the user's files or directories (``*.py``, ``*.txt``, ``*.md`` under a directory). It is built once
per content into ``<cache_dir>/bytes-<digest>.u8`` (written to a temporary file and renamed, so
ranks building it at the same time all end with the same complete file). Sample ``i`` is the
window starting at byte ``i * stride``; which windows a rank reads at a step is decided by
:class:`train.data.ShardedBatches` from the seed and the position alone, so resume is exact.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

SUFFIXES = (".py", ".txt", ".md", ".rst")
_SKIP_PARTS = {"site-packages", "dist-packages", "__pycache__"}


def corpus_files(paths: list[str] | None) -> list[Path]:
    """The files to read, in a fixed order: ``paths`` (files, or directories searched for text), else the stdlib."""
    roots = [Path(p).expanduser() for p in paths] if paths else [Path(sysconfig.get_paths()["stdlib"])]
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file()
                            and not _SKIP_PARTS & set(p.relative_to(root).parts))
        else:
            raise FileNotFoundError(f"data.dataset.paths: {root} does not exist")
    if not files:
        raise ValueError(f"data.dataset.paths: no text files ({', '.join(SUFFIXES)}) under {[str(r) for r in roots]}")
    return files


def build_corpus(files: list[Path], cache_dir: Path, max_bytes: int) -> Path:
    """The token file for these files (built if missing): their bytes, one after another, up to ``max_bytes``."""
    key = hashlib.sha256(str(max_bytes).encode())
    for f in files:
        stat = f.stat()
        key.update(f"{f}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    path = Path(cache_dir) / f"bytes-{key.hexdigest()[:16]}.u8"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bytes-")
    written = 0
    with os.fdopen(fd, "wb") as out:
        for f in files:
            data = f.read_bytes()[: max_bytes - written]
            out.write(data)
            written += len(data)
            if written >= max_bytes:
                break
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)  # identical content whichever rank renames last
    log.info("text corpus: %d files, %.1f MB -> %s", len(files), written / 1e6, path)
    return path


class ByteWindows(torch.utils.data.Dataset):
    """Windows of ``context + 1`` bytes from a split of the corpus: input = the first ``context``, target = shifted by one.

    The last ``val_fraction`` of the bytes is the ``val`` split, the rest ``train``.
    """

    def __init__(self, cache_dir: str, context: int, split: str = "train", paths: list[str] | None = None,
                 max_bytes: int = 4_000_000, val_fraction: float = 0.1, stride: int | None = None) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not 0 < val_fraction < 1:
            raise ValueError(f"data.dataset.val_fraction must be between 0 and 1, got {val_fraction!r}")
        self.path = build_corpus(corpus_files(list(paths) if paths else None), Path(cache_dir), int(max_bytes))
        total = self.path.stat().st_size
        cut = int(total * (1 - val_fraction))
        self.start, self.end = (0, cut) if split == "train" else (cut, total)
        self.context, self.stride = context, stride or context
        self._tokens: np.memmap | None = None
        if (self.end - self.start) < context + 1:
            raise ValueError(f"the {split} split has {self.end - self.start} bytes, fewer than context + 1 = {context + 1}")

    def __len__(self) -> int:
        return (self.end - self.start - self.context - 1) // self.stride + 1

    @property
    def tokens(self) -> np.memmap:
        if self._tokens is None:  # opened in the process that reads (a loader worker maps it itself)
            self._tokens = np.memmap(self.path, dtype=np.uint8, mode="r")
        return self._tokens

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokens": None}

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``indices`` as (inputs, targets), each (batch, context) int64."""
        starts = self.start + indices.numpy().astype(np.int64) * self.stride
        rows = np.stack([self.tokens[s : s + self.context + 1] for s in starts]).astype(np.int64)
        rows_t = torch.from_numpy(rows)
        return rows_t[:, :-1], rows_t[:, 1:]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = self.batch(torch.tensor([index]))
        return inputs[0], targets[0]
