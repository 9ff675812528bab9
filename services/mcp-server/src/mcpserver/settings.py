"""The MCP server's settings, from ``MCP_*`` environment variables (Temporal's own come from
Temporal's environment configuration, as for every process of the project)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from httpkit.jwks import JwtPolicy, parse_algorithms
from mcpserver.auth import Authenticator, OidcMapping, StaticTokens

DEFAULT_PORT = 8406
PORT_ENV = "MCP_SERVER_PORT"
DEFAULT_THRESHOLD_CENTS = 10_000


class SettingsError(ValueError):
    """A setting that cannot work; the message names it and says what to set."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    public_url: str
    """This server's MCP endpoint as clients reach it: the resource its metadata names."""
    authorization_server: str
    """Who issues its tokens (the OIDC issuer; the server itself when only static tokens are used)."""
    tokens_file: Path | None
    oidc: OidcMapping | None
    audit_log: Path | None
    approval_threshold_cents: int
    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]

    @classmethod
    def from_env(cls, host: str, port: int, environ: Mapping[str, str] = os.environ) -> Settings:
        def get(name: str) -> str:
            return environ.get(name, "").strip()

        public_url = get("MCP_PUBLIC_URL") or f"http://{host}:{port}/mcp"
        oidc = _oidc(get)
        tokens = get("MCP_TOKENS_FILE")
        threshold = get("MCP_APPROVAL_THRESHOLD_CENTS") or str(DEFAULT_THRESHOLD_CENTS)
        if not threshold.isdigit():
            raise SettingsError("MCP_APPROVAL_THRESHOLD_CENTS must be a whole number of cents")
        loopback = host in ("127.0.0.1", "localhost", "::1")
        hosts = get("MCP_ALLOWED_HOSTS") or ("127.0.0.1:*,localhost:*" if loopback else "")
        origins = get("MCP_ALLOWED_ORIGINS") or ("http://127.0.0.1:*,http://localhost:*" if loopback else "")
        return cls(
            host=host,
            port=port,
            public_url=public_url,
            authorization_server=(
                oidc.policy.issuer if oidc and oidc.policy.issuer else public_url.rsplit("/mcp", 1)[0]
            ),
            tokens_file=Path(tokens) if tokens else None,
            oidc=oidc,
            # "-" (or unset): audit lines on stderr, the log stream (stdout may be the stdio transport).
            audit_log=Path(get("MCP_AUDIT_LOG")) if get("MCP_AUDIT_LOG") not in ("", "-") else None,
            approval_threshold_cents=int(threshold),
            allowed_hosts=tuple(h for h in hosts.split(",") if h),
            allowed_origins=tuple(o for o in origins.split(",") if o),
        )

    def authenticator(self) -> Authenticator:
        if self.tokens_file is None and self.oidc is None:
            raise SettingsError(
                "no way to authenticate callers: set MCP_TOKENS_FILE (static tokens) or MCP_OIDC_ISSUER, "
                "MCP_OIDC_AUDIENCE and MCP_OIDC_JWKS_URL (your identity provider)"
            )
        try:
            static = StaticTokens.from_file(self.tokens_file) if self.tokens_file else None
        except ValueError as err:
            raise SettingsError(str(err)) from None
        return Authenticator(static, self.oidc)


def _oidc(get: Callable[[str], str]) -> OidcMapping | None:
    issuer, audience, jwks_url = get("MCP_OIDC_ISSUER"), get("MCP_OIDC_AUDIENCE"), get("MCP_OIDC_JWKS_URL")
    if not (issuer or audience or jwks_url):
        return None
    named = (("MCP_OIDC_ISSUER", issuer), ("MCP_OIDC_AUDIENCE", audience), ("MCP_OIDC_JWKS_URL", jwks_url))
    missing = [n for n, v in named if not v]
    if missing:
        raise SettingsError(f"OIDC is half configured: set {' and '.join(missing)} too")
    try:
        algorithms = parse_algorithms(get("MCP_OIDC_ALGORITHMS"), "MCP_OIDC_ALGORITHMS")
    except ValueError as err:
        raise SettingsError(str(err)) from None
    return OidcMapping(
        JwtPolicy(jwks_url=jwks_url, audience=audience, issuer=issuer, algorithms=algorithms),
        scope_claim=get("MCP_OIDC_SCOPE_CLAIM") or "scope",
        customer_claim=get("MCP_OIDC_CUSTOMER_CLAIM") or "customer_id",
    )
