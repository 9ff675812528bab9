"""``python -m approval_portal``: serve the approval page and API.

Settings (services/approval-portal/README.md): ``PORTAL_PORT``; ``PORTAL_SESSION_SECRET_FILE``
(required, at least 32 bytes, the same on every replica); ``PORTAL_SESSION_TTL_S`` (3600);
``PORTAL_AUDIT_LOG`` (a file, else stdout); who may sign in: ``AGENT_PRINCIPALS_FILE`` and/or
``AGENT_OIDC_ISSUER``/``AGENT_OIDC_AUDIENCE``/``AGENT_OIDC_JWKS_URL`` (:mod:`agent.identity`);
the server and keys: ``TEMPORAL_*`` and ``CODEC_KEYRING_*`` as for every worker.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import closing
from pathlib import Path

from agent.identity import Identities, IdentityError
from approval_portal.app import create_app
from approval_portal.audit import AuditLog
from approval_portal.desk import ApprovalDesk
from approval_portal.sessions import MIN_SECRET_BYTES, Sessions
from httpkit import BindError, bind_socket, parse_server_arguments, serve
from payload_codec import CodecConfigError, key_source_from_env
from workerkit import ConfigError, connect
from workerkit.settings import seconds_setting

PORT_ENV = "PORTAL_PORT"
DEFAULT_PORT = 8405
NAMESPACE = "agents"
log = logging.getLogger("approval_portal")


class SettingsError(Exception):
    """A setting is missing or wrong; one sentence naming it."""


def _session_secret() -> bytes:
    path = os.environ.get("PORTAL_SESSION_SECRET_FILE")
    if not path:
        raise SettingsError(
            "set PORTAL_SESSION_SECRET_FILE to a file of at least 32 random bytes, the same on every replica "
            "(e.g. openssl rand -base64 48 > portal-session-secret)"
        )
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as err:
        raise SettingsError(f"cannot read PORTAL_SESSION_SECRET_FILE {path} ({err.strerror})") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise SettingsError(f"PORTAL_SESSION_SECRET_FILE must hold at least {MIN_SECRET_BYTES} bytes")
    return secret


def _port() -> int:
    raw = os.environ.get(PORT_ENV, str(DEFAULT_PORT))
    if not raw.isdigit() or not 0 <= int(raw) < 65536:
        raise SettingsError(f"{PORT_ENV} must be a port number, got {raw!r}")
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    args = parse_server_arguments(
        "python -m approval_portal",
        "Approval portal: support leads see the refunds waiting in agent conversations and approve or "
        "reject them. See services/approval-portal/README.md.",
        argv,
        port_env=PORT_ENV,
        default_port=DEFAULT_PORT,
    )
    try:
        port = args.port if args.port is not None else _port()
        sessions = Sessions(_session_secret(), int(seconds_setting("PORTAL_SESSION_TTL_S", 3600.0)))
        identities = Identities.from_env()
        key_source_from_env().load()  # fail now, in one sentence, rather than at the first page
        patience = seconds_setting("PORTAL_CONNECT_PATIENCE_S", 10.0, zero_allowed=True)
        audit_path = os.environ.get("PORTAL_AUDIT_LOG")
        audit = AuditLog(Path(audit_path) if audit_path else None)
    except (SettingsError, IdentityError, CodecConfigError, ConfigError, ValueError) as err:
        print(f"approval portal: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"approval portal: cannot open the audit log ({err.strerror}); fix PORTAL_AUDIT_LOG", file=sys.stderr)
        return 1

    async def desk() -> ApprovalDesk:
        return ApprovalDesk(await connect(NAMESPACE, patience_s=patience))

    app = create_app(identities, sessions, audit, desk)
    try:
        sock = bind_socket(args.host, port, port_env=PORT_ENV)
    except BindError as err:
        print(f"approval portal: {err}", file=sys.stderr)
        return 1
    host, bound = sock.getsockname()[:2]
    log.info("approval portal listening on http://%s:%d", host, bound)
    with closing(audit):
        serve(app, sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
