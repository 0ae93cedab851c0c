"""Which processes live below a pid, read from /proc: for the tests and the soak benchmark (no pytest here).

Used to prove that nothing a job started outlives it (ranks, loader workers, the fork server).
"""

from __future__ import annotations

from pathlib import Path


def children() -> dict[int, list[int]]:
    """pid -> its child pids, for every process now (from /proc)."""
    found: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return found


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    tree = children()
    found, todo = set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an exited process nobody has reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
