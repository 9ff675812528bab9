"""Ending a short-lived client process safely."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_without_finalizing(code: int) -> NoReturn:
    """Flush and leave with ``code``, skipping interpreter finalization.

    The Temporal SDK's Rust runtime threads may still run while Python finalizes and then crash
    the process (SIGSEGV or SIGABRT in a few percent of short-lived client runs, after all work
    is done and printed; temporalio/sdk-python#300). For a CLI that would turn success into
    failure, so client commands end here instead of through ``sys.exit``.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
