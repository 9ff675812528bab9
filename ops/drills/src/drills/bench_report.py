"""What every benchmark report of a stack starts with: when, on what, and how it was measured."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version


def report_header(doc: str) -> dict[str, object]:
    """``generated_at``, ``machine`` and ``method`` (the benchmark module's docstring after its
    first paragraph), so a result file says where its figures come from without the code."""
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "temporalio": version("temporalio"),
        },
        "method": doc.split("\n\n", 1)[1].strip(),
    }
