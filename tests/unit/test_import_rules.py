"""The import rules of docs/architecture.md: ft stays light; train and launcher never import each other;
the loop never imports the shipped workloads, which use only train's public API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_ft_does_not_load_hydra_launcher_or_train():
    code = (
        "import sys, ft; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'hydra', 'launcher', 'train'}); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=ROOT)


def _imported_top_levels(package: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("ft", {"launcher", "train", "workloads", "hydra_plugins"}), ("train", {"launcher", "workloads", "hydra_plugins"}),
     ("workloads", {"launcher", "hydra_plugins"}),
     ("launcher", {"train", "hydra_plugins"}), ("hydra_plugins/ft_launcher_plugin", {"train"})],
)
def test_packages_respect_the_import_rules(package, forbidden):
    assert not (_imported_top_levels(package) & forbidden)


def _names_imported_from_ft(package: str) -> dict[str, set[str]]:
    """Every ``from ft... import name`` and ``import ft.x`` in ``package``, by file."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and (
                    node.module == "ft" or node.module.startswith("ft.")):
                names = {alias.name for alias in node.names} if node.module == "ft" else {node.module}
                found.setdefault(str(path.relative_to(ROOT)), set()).update(names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("ft."):
                        found.setdefault(str(path.relative_to(ROOT)), set()).add(alias.name)
    return found


def test_train_uses_only_names_that_ft_exports():
    """train depends on ft's public surface (``ft.__all__``), never on its modules' insides."""
    import ft

    for path, names in _names_imported_from_ft("train").items():
        private = {n for n in names if n.startswith("ft.") or n not in ft.__all__}
        assert not private, f"{path} imports {sorted(private)}, which ft/__init__.py does not export"


def test_workloads_use_only_trains_public_api():
    """A shipped workload is written as a fork's would be: ``from train import <name in train.__all__>``."""
    import train

    for path in (ROOT / "workloads").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "train":
                assert node.module == "train", f"{path.relative_to(ROOT)} imports {node.module}: use `from train import ...`"
                private = {alias.name for alias in node.names} - set(train.__all__)
                assert not private, f"{path.relative_to(ROOT)} imports {sorted(private)}, not in train.__all__"
            elif isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "train" for a in node.names), path


def _imported_modules(package: str) -> set[str]:
    """Every absolute module name ``package`` imports (``from a.b import c`` gives ``a.b``)."""
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    return names


@pytest.mark.parametrize(("part", "forbidden"), [
    ("ft/client", ("ft.monitor",)), ("ft/monitor", ("ft.client",)), ("ft/shared", ("ft.client", "ft.monitor")),
])
def test_the_rank_side_and_the_node_side_of_ft_meet_only_in_ft_shared(part, forbidden):
    bad = sorted(m for m in _imported_modules(part) if m == "ft" or m.startswith(forbidden))
    assert not bad, f"{part} imports {bad}"


def test_the_hydra_plugin_uses_only_the_launchers_sweeps_face():
    used = sorted(m for m in _imported_modules("hydra_plugins/ft_launcher_plugin") if m.split(".")[0] == "launcher")
    assert set(used) <= {"launcher.sweeps"}, used
