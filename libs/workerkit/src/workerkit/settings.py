"""Settings read from the environment, checked where they are read: a bad value is one sentence
naming the variable (a :class:`~workerkit.errors.ConfigError`), never a traceback later."""

from __future__ import annotations

import os
from collections.abc import Mapping

from workerkit.errors import ConfigError


def seconds_setting(
    name: str, default: float, *, env: Mapping[str, str] = os.environ, zero_allowed: bool = False
) -> float:
    """``env[name]`` as a number of seconds (``default`` when unset); positive, or 0 or more."""
    raw = env.get(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value >= 0 if zero_allowed else value > 0):
        kind = "a number of seconds (0 or more)" if zero_allowed else "a positive number of seconds"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}")
    return value
