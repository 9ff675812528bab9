"""Short-lived client processes (operator CLIs): reporting their errors, and ending safely."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

from rich.console import Console
from rich.markup import escape


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


EXIT_ERROR = 1
# EX_SOFTWARE (sysexits.h): a bug of ours, not the user's input.
EXIT_UNEXPECTED = 70
EXIT_INTERRUPTED = 130


def report_errors(
    prog: str, command: Callable[[], int], *, expected: tuple[type[Exception], ...], debug: bool, err: Console
) -> int:
    """Run an operator command and turn its failures into one line on ``err`` and an exit code.

    An ``expected`` error is the user's to fix, and its message was written for them: printed
    whole, exit 1. Anything else is ours: only its type is printed, because its message could
    quote data (keys, payloads) that was never meant for a terminal; ``debug`` re-raises it.
    """
    try:
        return command()
    except expected as exc:
        err.print(f"[red]{prog}:[/red] {escape(str(exc))}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.print(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        err.print(f"[red]{prog}:[/red] unexpected {type(exc).__name__}; rerun with --debug to see where")
        return EXIT_UNEXPECTED
