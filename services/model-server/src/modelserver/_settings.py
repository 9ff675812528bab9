"""Configuration from the environment, validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._faults import FaultConfigError, FaultRule, parse_rules_text

PORT_ENV = "MODEL_SERVER_PORT"
DEFAULT_PORT = 8400


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Settings:
    faults: tuple[FaultRule, ...] = ()
    ledger_path: Path | None = None
    # repr=False keeps the key out of any log line or traceback that prints the settings.
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        faults: tuple[FaultRule, ...] = ()
        if env.get("MODEL_SERVER_FAULTS", "").strip():
            try:
                faults = tuple(parse_rules_text(env["MODEL_SERVER_FAULTS"], source="MODEL_SERVER_FAULTS"))
            except FaultConfigError as exc:
                raise SettingsError(str(exc)) from None
        ledger = env.get("MODEL_SERVER_LEDGER_PATH", "").strip()
        api_key = env.get("MODEL_SERVER_API_KEY") or None
        return cls(faults=faults, ledger_path=Path(ledger) if ledger else None, api_key=api_key)


def port_from_env(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get("MODEL_SERVER_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"MODEL_SERVER_PORT must be a port number; got {raw!r}.") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"MODEL_SERVER_PORT must be between 0 and 65535; got {port}.")
    return port
