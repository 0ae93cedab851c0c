"""``make gpu-check``: the CUDA tests and GPU measurements on one machine's own torch, as one table.

    python scripts/gpu_check.py --probe                         # exit 1, one line, when no CUDA GPU is visible
    python scripts/gpu_check.py --make-venv .venv-gpu --wheels .whl
    .venv-gpu/bin/python scripts/gpu_check.py --out gpu-check.json

``--make-venv`` builds a venv that sees this interpreter's packages (its torch, whatever release) through
a ``.pth`` file, the repository on its path, an ``ft_launcher`` script, and the pure-Python wheels in
``--wheels`` for what this interpreter lacks (hydra-core, omegaconf, antlr4): nothing replaces its torch.
``--out`` runs ``pytest -m cuda tests/cuda`` (bounded) and writes the table as JSON; pytest's own output
goes to ``<out>.log``. Exit code 0 only when every test passed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORD_ENV = "PULSETRAIN_GPU_CHECK_RECORD"  # read by tests/cuda/conftest.py
BUDGET_S = 285  # the whole pytest run; each test bounds its own jobs too
# hydra-core, omegaconf and antlr4 come as one set (omegaconf needs antlr4 4.9 exactly); the others when missing.
HYDRA_SET = ("hydra_core", "omegaconf", "antlr4_python3_runtime")
HYDRA_WORKS = "import hydra, omegaconf; omegaconf.OmegaConf.create({'a': '${b}', 'b': 1}).a"
OTHERS = {"yaml": "pyyaml", "rich": "rich"}
ORDER = ("test_cuda_training.py", "test_cuda_faults.py", "test_cuda_fork_server.py", "test_cuda_throughput.py")
# Rows that are not tests: what the issue asks for that does not exist yet.
NOT_BUILT = [{"row": "snapshot cost on a GPU step", "status": "not built", "seconds": None, "numbers": {},
              "detail": "step snapshots do not exist yet; nothing to measure"}]


def visible_gpus() -> tuple[int, str]:
    try:
        import torch
    except ImportError as exc:
        return 0, f"torch is not importable by {sys.executable} ({exc})"
    if not torch.cuda.is_available():
        return 0, f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) sees none"
    return torch.cuda.device_count(), ""


def _works(python: str, code: str) -> bool:
    return subprocess.run([python, "-c", code], capture_output=True, timeout=120).returncode == 0


def make_venv(target: Path, wheels: Path) -> None:
    """A venv on this interpreter's packages; the repo importable; missing pure-Python wheels unpacked into it."""
    host = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(target)
    site = target / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    # addsitedir, not a bare path: the host's own .pth files (namespace and editable installs) count too.
    lines = [str(REPO), *(f"import site; site.addsitedir({p!r})" for p in host)]
    (site / "pulsetrain-gpu-check.pth").write_text("\n".join(lines) + "\n")
    missing = [] if _works(sys.executable, HYDRA_WORKS) else list(HYDRA_SET)
    missing += [dist for module, dist in OTHERS.items() if importlib.util.find_spec(module) is None]
    for dist in missing:
        found = sorted(p for p in wheels.glob("*.whl") if p.name.lower().startswith(f"{dist.lower()}-"))
        if not found:
            sys.exit(f"gpu-check: {dist} is missing or unusable here and no {dist}-*.whl is in {wheels}/ "
                     f"(make gpu-wheels on a machine with a package index, then carry {wheels})")
        with zipfile.ZipFile(found[-1]) as wheel:
            wheel.extractall(site)
    entry = re.search(r'^ft_launcher\s*=\s*"([\w.]+):(\w+)"', (REPO / "pyproject.toml").read_text(), re.M)
    script = target / "bin" / "ft_launcher"
    script.write_text(f"#!{target.resolve()}/bin/python\nimport sys\nfrom {entry[1]} import {entry[2]}\n\n"
                      f"if __name__ == '__main__':\n    sys.exit({entry[2]}())\n")
    script.chmod(0o755)
    if not _works(str(target / "bin" / "python"), f"{HYDRA_WORKS}; import rich, yaml, torch, ft"):
        sys.exit(f"gpu-check: {target} cannot import hydra, omegaconf, rich, yaml, torch and ft together")
    print(f"gpu-check: {target} on {sys.executable}'s packages" + (f"; from wheels: {', '.join(missing)}" if missing
                                                                      else ""))


def run_tests(records: Path, log: Path) -> tuple[float, bool]:
    """pytest -m cuda tests/cuda within BUDGET_S; returns (seconds, whether it ran to its end)."""
    env = {**os.environ, RECORD_ENV: str(records), "PYTHONUNBUFFERED": "1"}
    first = [REPO / "tests" / "cuda" / name for name in ORDER]  # the least essential last, should time run out
    files = [*first, *sorted(set((REPO / "tests" / "cuda").glob("test_*.py")) - set(first))]
    argv = [sys.executable, "-m", "pytest", "-m", "cuda", "-p", "no:cacheprovider", "-q", "-rA", *map(str, files)]
    began = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(BUDGET_S)
            finished = True
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            finished = False
    return time.monotonic() - began, finished


def rows_from(records: Path, finished: bool) -> list[dict]:
    rows: dict[str, dict] = {}
    lines = records.read_text().splitlines() if records.exists() else []
    for entry in map(json.loads, lines):
        name = entry["test"].split("::", 1)[-1].removeprefix("test_")
        row = rows.setdefault(name, {"row": name, "status": "not finished", "seconds": 0.0, "numbers": {},
                                     "detail": ""})
        row["numbers"].update(entry.get("numbers", {}))
        if "outcome" in entry:
            row["seconds"] = round(row["seconds"] + entry["seconds"], 1)
            if entry["outcome"] != "passed" or row["status"] == "not finished":
                row["status"] = entry["outcome"] if entry["outcome"] != "failed" else f"failed ({entry['when']})"
            row["detail"] = row["detail"] or entry["detail"].removeprefix("Skipped: ")
    if not finished:
        for row in rows.values():
            if row["status"] == "not finished":
                row["detail"] = f"the {BUDGET_S} s budget ran out"
    return list(rows.values())


def environment() -> dict:
    import torch

    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
            "gpus": torch.cuda.device_count(), "gpu": torch.cuda.get_device_name(0), "driver": None, "nccl": None}
    try:
        info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except Exception:  # a torch without NCCL: the table says None
        pass
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        info["driver"] = smi.stdout.split("\n")[0].strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def table(info: dict, rows: list[dict]) -> str:
    head = (f"gpu-check {info['date']}: {info['gpus']} x {info['gpu']}, driver {info['driver']}, torch {info['torch']}, "
            f"CUDA {info['cuda']}, NCCL {info['nccl']}, Python {info['python']}")
    lines = [head, "", "| row | status | s | numbers |", "|---|---|---|---|"]
    for row in rows:
        numbers = ", ".join(f"{k} {v}" for k, v in row["numbers"].items()) or "-"
        said = [line for line in row["detail"].splitlines() if line.strip()]
        said = next((line[1:].strip() for line in said if line.startswith("E ")), said[-1] if said else "")
        status = row["status"] + (f": {said[:160]}" if row["status"] != "passed" and said else "")
        lines.append(f"| {row['row']} | {status} | {row['seconds'] if row['seconds'] is not None else '-'} | "
                     f"{numbers} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--probe", action="store_true", help="only say whether a CUDA GPU is visible")
    parser.add_argument("--make-venv", type=Path, metavar="DIR")
    parser.add_argument("--wheels", type=Path, default=REPO / ".whl")
    parser.add_argument("--out", type=Path, help="where the table goes as JSON")
    args = parser.parse_args()
    gpus, why = visible_gpus()
    if not gpus:
        print(f"gpu-check: no CUDA GPU is visible, nothing ran: {why}")
        return 1
    if args.probe:
        return 0
    if args.make_venv:
        make_venv(args.make_venv, args.wheels)
        return 0
    if args.out is None:
        parser.error("--out PATH is required")
    out = args.out.resolve()
    out = out / "gpu-check.json" if out.is_dir() else out
    records, log = out.with_suffix(".records.jsonl"), out.with_suffix(".log")
    records.unlink(missing_ok=True)
    seconds, finished = run_tests(records, log)
    rows = rows_from(records, finished)
    passed = bool(rows) and finished and all(row["status"] == "passed" for row in rows)
    info = environment()
    result = {**info, "seconds": round(seconds, 1), "passed": passed, "log": str(log), "rows": rows + NOT_BUILT}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(info, result["rows"]))
    print(f"\n{'all passed' if passed else 'NOT all passed'} in {seconds:.0f} s; JSON in {out}, pytest's output in {log}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
