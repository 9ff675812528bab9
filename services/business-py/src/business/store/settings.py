"""Which store the worker opens, and how it reaches its database: all from the environment.

| variable | default | meaning |
|---|---|---|
| ``BUSINESS_STORE`` | ``sqlite`` | ``sqlite`` (one file, one replica) or ``postgres`` (replicas) |
| ``BUSINESS_DB_PATH`` | ``./.data/business.sqlite3`` | the SQLite file |
| ``BUSINESS_DATABASE_URL`` | empty | libpq URL or ``key=value`` string; ``PG*`` variables fill the rest |
| ``BUSINESS_DATABASE_PASSWORD_FILE`` | unset | file whose content is the password (else ``PGPASSWORD``) |
| ``BUSINESS_DATABASE_POOL_MIN`` / ``_MAX`` | 1 / 10 | connections the pool keeps open / opens at most |
| ``BUSINESS_DATABASE_CONNECT_TIMEOUT`` | 10 | seconds to wait for the database at start-up and per connection |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

STORE_ENV = "BUSINESS_STORE"
STORES = ("sqlite", "postgres")
DB_PATH_ENV = "BUSINESS_DB_PATH"
DEFAULT_DB_PATH = Path(".data") / "business.sqlite3"
DATABASE_URL_ENV = "BUSINESS_DATABASE_URL"
PASSWORD_FILE_ENV = "BUSINESS_DATABASE_PASSWORD_FILE"
POOL_MIN_ENV = "BUSINESS_DATABASE_POOL_MIN"
POOL_MAX_ENV = "BUSINESS_DATABASE_POOL_MAX"
CONNECT_TIMEOUT_ENV = "BUSINESS_DATABASE_CONNECT_TIMEOUT"

# The activity threads (8) and the Nexus handlers' lookups share the pool: a little headroom.
DEFAULT_POOL_MIN = 1
DEFAULT_POOL_MAX = 10
DEFAULT_CONNECT_TIMEOUT_S = 10


class SettingsError(ValueError):
    """A store setting is malformed; one sentence naming the variable."""


@dataclass(frozen=True)
class PostgresSettings:
    url: str = ""
    """libpq URL or conninfo; may be empty (libpq's PG* variables then say everything)."""
    password: str | None = field(default=None, repr=False)
    """From BUSINESS_DATABASE_PASSWORD_FILE; None leaves it to libpq (PGPASSWORD, .pgpass)."""
    pool_min: int = DEFAULT_POOL_MIN
    pool_max: int = DEFAULT_POOL_MAX
    connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S


@dataclass(frozen=True)
class StoreSettings:
    kind: str = "sqlite"
    sqlite_path: Path = DEFAULT_DB_PATH
    postgres: PostgresSettings = field(default_factory=PostgresSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        env = os.environ if environ is None else environ
        kind = env.get(STORE_ENV) or "sqlite"
        if kind not in STORES:
            raise SettingsError(f"{STORE_ENV} must be one of {', '.join(STORES)}, got {kind!r}")
        password = None
        if path := env.get(PASSWORD_FILE_ENV):
            try:
                password = Path(path).read_text().strip()
            except OSError as err:
                raise SettingsError(
                    f"cannot read the database password file {path} ({PASSWORD_FILE_ENV}): {err.strerror}"
                ) from None
        pool_min = _count(env, POOL_MIN_ENV, DEFAULT_POOL_MIN, minimum=0)
        pool_max = _count(env, POOL_MAX_ENV, DEFAULT_POOL_MAX, minimum=1)
        if pool_max < pool_min:
            raise SettingsError(f"{POOL_MAX_ENV} ({pool_max}) must not be below {POOL_MIN_ENV} ({pool_min})")
        return cls(
            kind=kind,
            sqlite_path=Path(env.get(DB_PATH_ENV) or DEFAULT_DB_PATH),
            postgres=PostgresSettings(
                url=env.get(DATABASE_URL_ENV, ""),
                password=password,
                pool_min=pool_min,
                pool_max=pool_max,
                connect_timeout_s=_count(env, CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S, minimum=1),
            ),
        )


def _count(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise SettingsError(f"{name} must be a whole number of at least {minimum}, got {raw!r}")
    return int(raw)


def db_path_from_env() -> Path:
    return StoreSettings.from_env().sqlite_path
