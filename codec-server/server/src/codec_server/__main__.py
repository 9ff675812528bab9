"""``python -m codec_server``: serve /encode and /decode for the Temporal UI and CLI."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

from httpkit import BindError, bind_socket, parse_server_arguments, serve
from payload_codec import CodecConfigError, key_source_from_env, safe_id

from ._app import create_app
from ._audit import AuditLog
from ._auth import Authenticator, JwtVerifier, StaticTokens
from ._settings import DEFAULT_PORT, PORT_ENV, Settings, SettingsError, check_bind_host, port_from_env

log = logging.getLogger("codec_server")


def main(argv: list[str] | None = None) -> int:
    args = parse_server_arguments(
        "python -m codec_server",
        "Temporal codec server (encrypting codec of codec-server/SPEC.md). Keys: one of "
        "CODEC_KEYRING_FILE, CODEC_KEYRING_DIR, CODEC_KEYRING. Auth: CODEC_SERVER_TOKENS_FILE "
        "and/or CODEC_SERVER_JWKS_URL + CODEC_SERVER_JWT_AUDIENCE. See codec-server/README.md.",
        argv,
        port_env=PORT_ENV,
        default_port=DEFAULT_PORT,
    )
    try:
        port = args.port if args.port is not None else port_from_env()
        settings = Settings.from_env()
        check_bind_host(settings, args.host)
        # The name it listens on is one of its own (127.0.0.2, say), for the Host check.
        settings = replace(settings, allowed_hosts=settings.allowed_hosts | {args.host.lower().strip("[]")})
        keyring = key_source_from_env().load()
        static = StaticTokens.from_file(settings.tokens_file) if settings.tokens_file else None
        verifier = JwtVerifier(settings.jwt) if settings.jwt else None
    except (SettingsError, CodecConfigError) as exc:
        print(f"codec server: {exc}", file=sys.stderr)
        return 1
    chain_key = None
    if settings.audit_chain_key_file is not None:
        try:
            chain_key = settings.audit_chain_key_file.read_bytes().strip()
        except OSError as exc:
            print(
                f"codec server: cannot read CODEC_SERVER_AUDIT_CHAIN_KEY_FILE {settings.audit_chain_key_file} "
                f"({exc.strerror}).",
                file=sys.stderr,
            )
            return 1
        if len(chain_key) < 32:
            print(
                "codec server: CODEC_SERVER_AUDIT_CHAIN_KEY_FILE must hold at least 32 bytes "
                "(e.g. openssl rand -base64 32).",
                file=sys.stderr,
            )
            return 1
    try:
        audit = AuditLog(settings.audit_log, chain_key=chain_key)
    except OSError as exc:
        print(
            f"codec server: cannot open the audit log {settings.audit_log} ({exc.strerror}); "
            "fix or unset CODEC_SERVER_AUDIT_LOG.",
            file=sys.stderr,
        )
        return 1
    auth = Authenticator(static, verifier, disabled=settings.auth_disabled, anonymous_role=settings.anonymous_role)
    app = create_app(settings, keyring, auth, audit)
    try:
        sock = bind_socket(args.host, port, port_env=PORT_ENV)
    except BindError as exc:
        print(f"codec server: {exc}", file=sys.stderr)
        audit.close()
        return 1
    host, bound_port = sock.getsockname()[:2]
    # Ids and counts only; never material.
    log.info(
        "codec server listening on http://%s:%d keys=%s active=%s auth=%s cors=%s audit=%s",
        host,
        bound_port,
        ",".join(sorted(safe_id(k) for k in keyring.key_ids)),
        ",".join(f"{safe_id(ns)}={safe_id(kid)}" for ns, kid in sorted(keyring.active.items())),
        ",".join(auth.methods),
        ",".join(settings.cors_origins) or "none",
        settings.audit_log or "stdout",
    )
    if settings.auth_disabled:
        log.warning("authentication is DISABLED (CODEC_SERVER_AUTH_DISABLED); loopback-only local development")
    try:
        serve(app, sock)
    finally:
        audit.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
