"""Server configuration from the environment, validated once at start-up."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from httpkit.jwks import JwtPolicy, parse_algorithms

PORT_ENV = "CODEC_SERVER_PORT"
DEFAULT_PORT = 8404
DEFAULT_CORS_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
# What one request may decode to in total (the per-payload bound is the codec library's, the
# one every worker applies too). Compression makes ciphertext small and plaintext large, so the
# body limit alone does not bound the response: 60 copies of a 6 KB payload of 6 MB of zeros
# would otherwise decode to 360 MB.
DEFAULT_MAX_DECODED_BYTES = 64 * 1024 * 1024
# Host names served while callers need no token (auth disabled or anonymous decode): a web page
# that rebinds its own name to 127.0.0.1 sends its own name as Host and is refused.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "::1")
_NAMESPACE = re.compile(r"[A-Za-z0-9._-]{1,255}")


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message says what to change."""


def valid_namespace(name: str) -> bool:
    return _NAMESPACE.fullmatch(name) is not None


@dataclass(frozen=True)
class JwtSettings:
    """Which tokens are accepted (the shared ``httpkit.jwks`` policy), and which of their claims
    say who the caller is and what it may decode or encode."""

    policy: JwtPolicy
    subject_claim: str = "sub"
    namespaces_claim: str = "namespaces"
    roles_claim: str = "roles"
    permissions_claim: str = "permissions"


@dataclass(frozen=True)
class Settings:
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    tokens_file: Path | None = None
    jwt: JwtSettings | None = None
    auth_disabled: bool = False
    # Rights of callers that send no token (loopback only): lets a local Web UI without login
    # decode while tokens still identify everyone who has one.
    anonymous_role: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    allowed_hosts: frozenset[str] = frozenset(DEFAULT_ALLOWED_HOSTS)
    # Namespaces whose workflows call the Nexus endpoints, and the namespaces those endpoints
    # target: a caller's history holds the targets' results, encrypted under the targets' keys.
    nexus_targets: frozenset[str] = frozenset()
    nexus_callers: frozenset[str] = frozenset()
    audit_log: Path | None = None
    # HMAC key for the audit log's hash chain: without it, whoever can write the file can also
    # re-chain an edit; with it (kept from the log's administrators) they cannot.
    audit_chain_key_file: Path | None = None
    # Namespaces that get their own metrics label value; the rest are counted as "other".
    metric_namespaces: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        origins = _cors_origins(env)
        tokens = get("CODEC_SERVER_TOKENS_FILE")
        jwt_settings = _jwt_settings(env, get)
        auth_disabled = get("CODEC_SERVER_AUTH_DISABLED").lower() in ("1", "true", "yes")
        _check_authentication(auth_disabled, bool(tokens), jwt_settings is not None)
        anonymous_role = get("CODEC_SERVER_ANONYMOUS_ROLE") or None
        if anonymous_role not in (None, "decode"):
            raise SettingsError(
                f"CODEC_SERVER_ANONYMOUS_ROLE may only be 'decode' (anonymous callers never encode), "
                f"got {anonymous_role!r}"
            )
        namespaces = _namespaces(get, "CODEC_SERVER_NAMESPACES")
        audit = get("CODEC_SERVER_AUDIT_LOG")
        chain_key_file = get("CODEC_SERVER_AUDIT_CHAIN_KEY_FILE")
        hosts = _allowed_hosts(get)
        callers = _namespaces(get, "CODEC_SERVER_NEXUS_CALLERS")
        endpoints_file = get("CODEC_SERVER_NEXUS_ENDPOINTS_FILE")
        if callers and not endpoints_file:
            raise SettingsError(
                "CODEC_SERVER_NEXUS_CALLERS needs CODEC_SERVER_NEXUS_ENDPOINTS_FILE (nexus/endpoints.json): "
                "the targets of the endpoints are the namespaces whose keys the callers' histories hold"
            )
        return cls(
            cors_origins=tuple(origins),
            tokens_file=Path(tokens) if tokens else None,
            jwt=jwt_settings,
            auth_disabled=auth_disabled,
            anonymous_role=anonymous_role,
            max_body_bytes=_int(env, "CODEC_SERVER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1024),
            max_decoded_bytes=_int(env, "CODEC_SERVER_MAX_DECODED_BYTES", DEFAULT_MAX_DECODED_BYTES, minimum=1024),
            allowed_hosts=frozenset(DEFAULT_ALLOWED_HOSTS) | frozenset(hosts),
            nexus_targets=_nexus_targets(Path(endpoints_file)) if endpoints_file else frozenset(),
            nexus_callers=callers,
            audit_log=None if audit in ("", "-") else Path(audit),
            audit_chain_key_file=Path(chain_key_file) if chain_key_file else None,
            metric_namespaces=namespaces,
        )


def _cors_origins(env: Mapping[str, str]) -> list[str]:
    raw = env.get("CODEC_SERVER_CORS_ORIGINS")
    origins = list(DEFAULT_CORS_ORIGINS) if raw is None else _csv(raw)
    for origin in origins:
        if origin == "*" or not re.fullmatch(r"https?://[^/\s]+", origin):
            raise SettingsError(
                f"CODEC_SERVER_CORS_ORIGINS entry {origin!r} must be an origin like "
                "https://temporal.example.com (scheme://host[:port], no path, no *)"
            )
    return origins


def _allowed_hosts(get: Callable[[str], str]) -> list[str]:
    hosts = [h.lower().strip("[]") for h in _csv(get("CODEC_SERVER_ALLOWED_HOSTS"))]
    for host in hosts:
        if not re.fullmatch(r"[a-z0-9.:_-]+", host):
            raise SettingsError(
                f"CODEC_SERVER_ALLOWED_HOSTS entry {host!r} must be a host name or address, without port"
            )
    return hosts


def _check_authentication(auth_disabled: bool, tokens: bool, jwt: bool) -> None:
    """Exactly one way to authenticate callers: tokens and/or OIDC, or explicitly none."""
    if auth_disabled and (tokens or jwt):
        raise SettingsError(
            "CODEC_SERVER_AUTH_DISABLED is set together with CODEC_SERVER_TOKENS_FILE or "
            "CODEC_SERVER_JWKS_URL; choose one"
        )
    if not (auth_disabled or tokens or jwt):
        raise SettingsError(
            "no authentication configured: set CODEC_SERVER_TOKENS_FILE (static tokens) and/or "
            "CODEC_SERVER_JWKS_URL with CODEC_SERVER_JWT_AUDIENCE (OIDC), or "
            "CODEC_SERVER_AUTH_DISABLED=1 for loopback-only local development"
        )


def _jwt_settings(env: Mapping[str, str], get: Callable[[str], str]) -> JwtSettings | None:
    """OIDC settings when CODEC_SERVER_JWKS_URL is set, else None."""
    url = get("CODEC_SERVER_JWKS_URL")
    if not url:
        return None
    if not re.match(r"https?://", url):
        raise SettingsError("CODEC_SERVER_JWKS_URL must be an http(s) URL")
    audience = get("CODEC_SERVER_JWT_AUDIENCE")
    if not audience:
        raise SettingsError(
            "CODEC_SERVER_JWT_AUDIENCE is required with CODEC_SERVER_JWKS_URL: without it a "
            "token minted for any other service of the same issuer would be accepted"
        )
    try:
        algorithms = parse_algorithms(get("CODEC_SERVER_JWT_ALGORITHMS"), "CODEC_SERVER_JWT_ALGORITHMS")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return JwtSettings(
        JwtPolicy(
            jwks_url=url,
            audience=audience,
            issuer=get("CODEC_SERVER_JWT_ISSUER") or None,
            algorithms=algorithms,
            leeway_seconds=_int(env, "CODEC_SERVER_JWT_LEEWAY_SECONDS", 10, minimum=0),
        ),
        subject_claim=get("CODEC_SERVER_JWT_SUBJECT_CLAIM") or "sub",
        namespaces_claim=get("CODEC_SERVER_JWT_NAMESPACES_CLAIM") or "namespaces",
        roles_claim=get("CODEC_SERVER_JWT_ROLES_CLAIM") or "roles",
        permissions_claim=get("CODEC_SERVER_JWT_PERMISSIONS_CLAIM") or "permissions",
    )


def _nexus_targets(path: Path) -> frozenset[str]:
    """The target namespaces of a Nexus endpoint list in the format of nexus/endpoints.json."""
    where = f"CODEC_SERVER_NEXUS_ENDPOINTS_FILE {path}"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read {where} ({exc.strerror or exc})") from None
    except ValueError:
        raise SettingsError(f"{where} is not JSON") from None
    entries = document.get("endpoints") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("target_namespace"), str) and valid_namespace(e["target_namespace"])
        for e in entries
    ):
        raise SettingsError(f'{where} must be {{"endpoints": [{{"target_namespace": "...", ...}}, ...]}}')
    return frozenset(e["target_namespace"] for e in entries)


def check_bind_host(settings: Settings, host: str) -> None:
    """Unauthenticated access is for a developer's own machine only."""
    if not (settings.auth_disabled or settings.anonymous_role):
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise SettingsError(
            f"CODEC_SERVER_AUTH_DISABLED and CODEC_SERVER_ANONYMOUS_ROLE only work on a loopback "
            f"address, not {host}; configure CODEC_SERVER_TOKENS_FILE or CODEC_SERVER_JWKS_URL "
            "to listen elsewhere"
        )


def port_from_env(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    return _int(env, "CODEC_SERVER_PORT", DEFAULT_PORT, minimum=0, maximum=65535)


def _namespaces(get: Callable[[str], str], name: str) -> frozenset[str]:
    namespaces = frozenset(_csv(get(name)))
    for ns in namespaces:
        if not valid_namespace(ns):
            raise SettingsError(f"{name} entry {ns!r} is not a namespace name")
    return namespaces


def _csv(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number; got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise SettingsError(f"{name} must be {bounds}; got {value}")
    return value
