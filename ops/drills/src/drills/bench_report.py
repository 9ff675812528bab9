"""What every benchmark report of a stack starts with: when, on what, and how it was measured."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path


def report_header(doc: str) -> dict[str, object]:
    """``generated_at``, ``commit``, ``machine`` and ``method`` (the benchmark module's docstring
    after its first paragraph), so a result file says where its figures come from without the code."""
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": source_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "temporalio": version("temporalio"),
        },
        "method": doc.split("\n\n", 1)[1].strip(),
    }


def source_commit() -> str:
    """The commit the figures were measured on, ``+changes`` when the tracked files differ from it."""
    root = Path(__file__).resolve().parents[4]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root)
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=root
    )
    return head.stdout.strip() + ("+changes" if changed.stdout.strip() else "")


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def print_targets(targets: dict[str, dict[str, object]], out: os.PathLike[str] | str) -> int:
    """Print each target as met or NOT MET and where the report went; 0 when all are met."""
    for target, verdict in targets.items():
        print(f"{'met' if verdict['met'] else 'NOT MET':7} {target}")
    print(f"written to {out}")
    return 0 if all(v["met"] for v in targets.values()) else 1
