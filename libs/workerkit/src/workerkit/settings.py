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


def positive_int_setting(
    name: str, default: int, *, env: Mapping[str, str] = os.environ, maximum: int | None = None
) -> int:
    """``env[name]`` as a whole number of at least 1 (``default`` when unset), at most ``maximum``:
    a pool size, a batch size, a concurrency limit."""
    kind = "a positive whole number" if maximum is None else f"a whole number from 1 to {maximum}"
    return _whole_number(name, default, env, 1, maximum, kind)


def rate_setting(name: str, *, env: Mapping[str, str] = os.environ) -> float | None:
    """``env[name]`` as a rate per second above 0; unset, empty or 0 means no limit (None)."""
    raw = env.get(name, "").strip()
    try:
        value = float(raw or 0)
    except ValueError:
        value = -1.0
    if value < 0 or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be a number of tasks per second (0 or unset for no limit), got {raw!r}")
    return value or None


def port_setting(name: str, default: int, *, env: Mapping[str, str] = os.environ) -> int:
    """``env[name]`` as a TCP port to listen on (``default`` when unset). 0, which the OS reads as
    "any free port", is refused: probes and scrapers must know the port in advance."""
    return _whole_number(name, default, env, 1, 65535, "a port number between 1 and 65535")


def _whole_number(name: str, default: int, env: Mapping[str, str], low: int, high: int | None, kind: str) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be {kind}, got {raw!r}")
    return value
