"""Argument types the agent's commands share (``agent chat``, ``agent schedule``)."""

from __future__ import annotations

import argparse
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(raw: str) -> float:
    """``90``, ``90s``, ``10m``, ``24h``, ``7d`` -> seconds."""
    match = _DURATION.match(raw)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a duration; use e.g. 90s, 10m, 24h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
