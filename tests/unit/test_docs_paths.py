"""Every repository path the README and docs/ name exists, so a moved module cannot leave the docs behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("examples/*/README.md"))]
# A path inside backticks that starts at one of the repository's top-level folders (a run directory's
# files such as `checkpoints/step_...pt` are not repository paths and start elsewhere).
TOP = ("ft", "launcher", "train", "workloads", "hydra_plugins", "conf", "tests", "benchmarks", "examples", "docs",
       "scripts")
PATH = re.compile(r"`((?:" + "|".join(TOP) + r")/[\w./-]*[\w/])`")


def _named_paths(doc: Path) -> list[str]:
    return [m.group(1) for m in PATH.finditer(doc.read_text()) if "<" not in m.group(1) and "*" not in m.group(1)]


def _exists(path: str) -> bool:
    """In the repository, or in one of the fork examples (the forking docs name a fork's own ``conf/`` files)."""
    path = path.split("::")[0]
    return any((base / path).exists() for base in (ROOT, *ROOT.glob("examples/fork_*")))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_doc_names_exists(doc):
    missing = sorted({p for p in _named_paths(doc) if not _exists(p)})
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"
