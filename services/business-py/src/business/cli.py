"""``business``: run the worker (the default) or prepare its database.

``business migrate`` brings the database BUSINESS_STORE names to this build's schema: for
PostgreSQL the versioned migrations (idempotent; refuses a database newer than the build), for
SQLite the file's in-place upgrade. The chart runs it as a hook Job before any worker starts.
"""

from __future__ import annotations

import argparse
import sys

from business.store import SettingsError, StoreError, StoreSettings, open_store


def migrate() -> int:
    try:
        settings = StoreSettings.from_env()
        if settings.kind == "postgres":
            from business.store.postgres import migrate as migrate_postgres

            report = migrate_postgres(settings.postgres)
            if report.before == report.after:
                print(f"business database {report.where}: already at schema version {report.after}")
            else:
                print(
                    f"business database {report.where}: migrated from schema version {report.before} to {report.after}"
                )
        else:
            open_store(settings).close()
            print(f"business database {settings.sqlite_path}: SQLite file at this build's schema")
    except (SettingsError, StoreError) as err:
        print(f"business migrate: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="business", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("worker", help="run the business worker (the default)")
    commands.add_parser("migrate", help="apply the schema migrations to the database BUSINESS_STORE names")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        return migrate()
    from business.worker import main as worker

    worker()
    return 0
