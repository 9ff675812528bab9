"""``make up DB=postgres``: the workers' records in PostgreSQL instead of their embedded files.

One server (the dev stack's own, or in cluster mode the cluster's, beside Temporal's databases)
holds a ``business`` and a ``retrieval`` database, each owned by a login role of the same name
whose password is generated once into the data directory (owner-only). The business schema is
applied by ``business migrate``, as the chart's hook Job does, before any worker starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack import postgres
from devstack.config import REPO_ROOT
from devstack.processes import StackError

BUSINESS = "business"
RETRIEVAL = "retrieval"

# Replicas each worker runs as on PostgreSQL (the embedded stores take one writer each).
BUSINESS_REPLICAS = 2
RETRIEVAL_REPLICAS = 2


@dataclass(frozen=True)
class WorkerDatabase:
    name: str
    """Database and role name alike."""
    url: str
    """libpq URL without the password."""
    password_file: Path

    def password(self) -> str:
        return postgres.generated_password(self.password_file)


def database(instance: postgres.Instance, data_dir: Path, name: str) -> WorkerDatabase:
    return WorkerDatabase(name, instance.url(name, name), data_dir / "db-passwords" / name)


def ensure(instance: postgres.Instance, data_dir: Path) -> dict[str, WorkerDatabase]:
    """Both databases and their roles (harmless when they exist); the retrieval database gets
    pgvector, whose extension only a superuser may create."""
    found = {}
    for name in (BUSINESS, RETRIEVAL):
        found[name] = db = database(instance, data_dir, name)
        postgres.ensure_database(instance, name, name, db.password())
    postgres.psql(instance, RETRIEVAL, "CREATE EXTENSION IF NOT EXISTS vector;")
    return found


def business_env(db: WorkerDatabase) -> dict[str, str]:
    """The business worker's store settings (the password by file, never in the environment)."""
    return {
        "BUSINESS_STORE": "postgres",
        "BUSINESS_DATABASE_URL": db.url,
        "BUSINESS_DATABASE_PASSWORD_FILE": str(db.password_file),
    }


def migrate_business(db: WorkerDatabase) -> str:
    """Run ``business migrate`` against ``db``; its one line of output."""
    return _migrate([sys.executable, "-m", "business", "migrate"], "BUSINESS_", business_env(db))


def _migrate(argv: list[str], prefix: str, settings: dict[str, str]) -> str:
    """Run a worker's migrate command with only ``settings`` of its own variables (and no PG*
    from the caller's environment); its last line of output, or StackError with its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith((prefix, "PG"))}
    done = subprocess.run(argv, env={**env, **settings}, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise StackError((done.stderr or done.stdout).strip().splitlines()[-1])
    out = (done.stdout or done.stderr).strip()
    return out.splitlines()[-1] if out else ""


# ---- issue 17: the retrieval worker's PostgreSQL backend ---------------------------------------
# The Go worker learns RETRIEVAL_BACKEND=postgres on its own branch. Until that build is here, this
# is the one place that notices an older binary and runs it embedded, as one replica (two
# replicas with two separate embedded indexes would answer differently). Delete the fallback
# once every build knows the variable.


def retrieval_speaks_postgres(binary: Path) -> bool:
    """Whether this build of the Go worker reads RETRIEVAL_DATABASE_URL (its name is in it)."""
    try:
        return b"RETRIEVAL_DATABASE_URL" in binary.read_bytes()
    except OSError:
        return False


def retrieval_env(db: WorkerDatabase, binary: Path) -> tuple[dict[str, str], int]:
    """The retrieval worker's backend settings and how many replicas to run."""
    if not retrieval_speaks_postgres(binary):
        return {}, 1
    # pgx, like libpq, reads PGPASSWORD: the password stays out of the URL and the command line.
    return {"RETRIEVAL_BACKEND": "postgres", "RETRIEVAL_DATABASE_URL": db.url, "PGPASSWORD": db.password()}, (
        RETRIEVAL_REPLICAS
    )


def migrate_retrieval(db: WorkerDatabase, binary: Path) -> str:
    """Run ``retrieval-worker migrate`` against ``db`` (the schema of the index, as the chart's
    hook Job does); its log line."""
    settings, _ = retrieval_env(db, binary)
    return _migrate([str(binary), "migrate"], "RETRIEVAL_", settings)
