"""Read the innermost frames of a hung rank's stack dump (``faulthandler`` format) for the log."""

from __future__ import annotations

from pathlib import Path


def top_frames(stack_file: Path | None, limit: int = 6) -> list[str]:
    """The latest dump's main-thread frames, innermost first; [] when there is no readable dump."""
    if stack_file is None:
        return []
    try:
        text = Path(stack_file).read_text(errors="replace")
    except OSError:
        return []
    lines = text.splitlines()
    # Each dump lists every thread; the thread that handled the signal (the main thread, where
    # Python code runs) is marked "Current thread". Take the latest dump's.
    starts = [i for i, line in enumerate(lines) if line.startswith("Current thread")]
    if not starts:
        starts = [i for i, line in enumerate(lines) if line.startswith("Thread ")]
    if not starts:
        return []
    frames = []
    for line in lines[starts[-1] + 1:]:
        if not line.startswith("  "):
            break
        frames.append(line.strip())
    header = [f"stack of {stack_file} (most recent call first):"]
    return header + frames[:limit] if frames else []


# Frames of a rank blocked in a collective: it waits for a peer and is rarely the cause of a hang.
_WAITING = ("torch/distributed/", "torch/autograd/", "torch/nn/parallel/")


def waits_on_peers(stack_file: Path | None) -> bool:
    """True when the rank's innermost frame is inside torch.distributed, autograd or DDP."""
    frames = top_frames(stack_file, limit=1)[1:]
    return bool(frames) and any(marker in frames[0] for marker in _WAITING)
