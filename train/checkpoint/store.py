"""CheckpointStore: atomic, self-verifying checkpoint files in one directory, the newest K kept.

A checkpoint is ``step_<step>.<digest>.pt``: a ``torch.save`` file whose name carries the first
16 hex digits of its SHA-256, so a torn or bit-flipped file is recognised before it is trusted.
Writes go to a temporary file that is flushed, fsynced and renamed into place; an older
checkpoint is pruned only after a newer one is durable. Only a file whose bytes no longer match
its digest (bit flips, a truncated file) is corrupt: it is renamed to ``*.corrupt`` (kept for
inspection, never deleted) and the previous checkpoint is used instead. Any other failure to load
is reported with its cause and touches no file: ``CheckpointError`` when retrying cannot help,
``CheckpointReadError`` when it may. Checkpoints that exist but cannot be loaded never turn into a
silent start from step 0.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ft import fsync_dir
from train.checkpoint.fingerprint import comparable
from train.errors import CheckpointError, CheckpointReadError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_NAME = re.compile(r"^step_(\d{8,})\.([0-9a-f]{16})\.pt$")


class CorruptCheckpoint(CheckpointError):
    """The file's bytes do not match the digest in its name: damaged on disk, never loadable."""


@dataclass(frozen=True, order=True)
class CheckpointFile:
    """One checkpoint on disk."""

    step: int
    path: Path
    digest: str


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


class _HashingWriter:
    """A file torch.save writes through, hashing the bytes on the way: no second read of the file."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._hash = hashlib.sha256()

    def write(self, data: Any) -> int:
        self._hash.update(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def digest(self) -> str:
        return self._hash.hexdigest()[:16]


class CheckpointStore:
    """The checkpoints of one run. Only rank 0 calls :meth:`save`; any rank may :meth:`load`."""

    def __init__(self, directory: str | Path, keep_last: int = 3) -> None:
        if int(keep_last) < 1:
            raise CheckpointError(f"checkpoint.keep_last must be >= 1, got {keep_last!r}")
        self.directory = Path(directory)
        self.keep_last = int(keep_last)

    # ------------------------------------------------------------------ listing
    def checkpoints(self) -> list[CheckpointFile]:
        """Valid-looking checkpoint files, oldest first (names only; contents are checked on load)."""
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.iterdir():
            m = _NAME.match(p.name)
            if m:
                found.append(CheckpointFile(int(m.group(1)), p, m.group(2)))
        return sorted(found)

    def remove_stale_temporaries(self) -> None:
        """Delete half-written temporary files left by a process killed while saving (not checkpoints)."""
        if self.directory.is_dir():
            for p in self.directory.glob(".step_*.tmp.*"):
                p.unlink(missing_ok=True)

    # ------------------------------------------------------------------ writing
    def save(self, step: int, state: dict[str, Any], on_written: Callable[[], None] | None = None) -> Path:
        """Write ``state`` as the checkpoint of ``step`` atomically, then prune to the newest ``keep_last``.

        ``on_written`` runs after the temporary file is durable and before it is renamed into
        place (fault injection uses it to hang mid-save).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".step_{step:08d}.pt.tmp.{os.getpid()}"
        try:
            with tmp.open("wb") as f:
                writer = _HashingWriter(f)
                torch.save({"format_version": FORMAT_VERSION, "step": step, **state}, writer)
                f.flush()
                os.fsync(f.fileno())
            if on_written is not None:
                on_written()
            final = self.directory / f"step_{step:08d}.{writer.digest()}.pt"
            os.replace(tmp, final)
            fsync_dir(self.directory)
        finally:
            tmp.unlink(missing_ok=True)
        self._prune(keep=final)
        return final

    def _prune(self, keep: Path) -> None:
        files = [c for c in self.checkpoints() if c.path != keep]
        for old in files[: max(0, len(files) - (self.keep_last - 1))]:
            old.path.unlink(missing_ok=True)
            log.debug("pruned checkpoint %s", old.path.name)

    # ------------------------------------------------------------------ reading
    def load(self, ckpt: CheckpointFile) -> dict[str, Any]:
        """Verify the digest and load. Raises CorruptCheckpoint, CheckpointError or CheckpointReadError."""
        name = ckpt.path.name
        try:
            actual = _digest(ckpt.path)
        except OSError as exc:
            raise CheckpointReadError(f"checkpoint {ckpt.path} cannot be read ({exc}); it is kept as it is") from None
        if actual != ckpt.digest:
            raise CorruptCheckpoint(f"{name}: content digest {actual} does not match its name")
        try:
            state = torch.load(ckpt.path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:  # the bytes are intact: a type this torch refuses to load
            cause = " ".join(str(exc).split())[:300]
            raise CheckpointError(
                f"checkpoint {ckpt.path} is intact but torch.load(weights_only=True) refuses it ({cause}); "
                "it is kept as it is. Resume with the torch version that wrote it, or allow the type with "
                "torch.serialization.add_safe_globals in your train.py") from None
        except Exception as exc:  # out of memory, I/O error while reading: a restart may cure it
            raise CheckpointReadError(f"checkpoint {ckpt.path} cannot be loaded now ({type(exc).__name__}: "
                                      f"{' '.join(str(exc).split())[:300]}); it is kept as it is") from None
        if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"checkpoint {ckpt.path} is not a pulsetrain checkpoint of format "
                                  f"{FORMAT_VERSION}; it is kept as it is")
        return state

    def set_aside(self) -> list[Path]:
        """Checkpoints renamed ``*.corrupt`` by earlier loads."""
        return sorted(self.directory.glob("step_*.pt.corrupt")) if self.directory.is_dir() else []

    def load_newest(self, fingerprint: Mapping[str, str],
                    allow_fresh_start: bool = False) -> tuple[CheckpointFile, dict[str, Any]] | None:
        """The newest loadable checkpoint, falling back past corrupt ones; ``None`` when there is none.

        A readable checkpoint whose fingerprint differs from ``fingerprint`` (another model, other
        data) raises CheckpointError: resuming it would be wrong, and nothing is renamed or deleted.
        Checkpoints that exist when none can be loaded raise CheckpointError too, unless
        ``allow_fresh_start``: training from step 0 beside them would silently throw work away.
        """
        for ckpt in reversed(self.checkpoints()):
            try:
                state = self.load(ckpt)
            except CorruptCheckpoint as exc:
                quarantined = ckpt.path.with_name(ckpt.path.name + ".corrupt")
                os.replace(ckpt.path, quarantined)
                log.warning("checkpoint %s is corrupt (%s); kept as %s, trying the previous one",
                            ckpt.path.name, exc, quarantined.name)
                continue
            check_compatible(ckpt, comparable(state.get("fingerprint", {})), comparable(fingerprint))
            return ckpt, state
        unusable = self.set_aside()
        if unusable and not allow_fresh_start:
            raise CheckpointError(
                f"{self.directory} has {len(unusable)} checkpoint(s), none loadable (set aside as *.corrupt: "
                f"{', '.join(p.name for p in unusable[-3:])}); refusing to train from step 0 beside them. "
                "Pass checkpoint.allow_fresh_start=true to start over anyway, or use a new run directory")
        if unusable:
            log.warning("%s: no loadable checkpoint (%d set aside as *.corrupt); starting from step 0 "
                        "(checkpoint.allow_fresh_start=true)", self.directory, len(unusable))
        return None


def check_compatible(ckpt: CheckpointFile, saved: Mapping[str, str], current: Mapping[str, str]) -> None:
    """Raise CheckpointError naming every config section that differs between checkpoint and run."""
    differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differing:
        details = "; ".join(
            f"{k}: checkpoint has {saved.get(k, '<missing>')!r}, this run has {current.get(k, '<missing>')!r}"
            for k in differing
        )
        raise CheckpointError(
            f"checkpoint {ckpt.path} was written by an incompatible config ({details}). "
            "Restore that config, or start a new run directory (hydra.run.dir=...)."
        )
