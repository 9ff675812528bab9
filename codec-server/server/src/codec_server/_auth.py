"""Who is calling, and may they do this to that namespace.

Two bearer-token methods: static tokens from a file of SHA-256 digests (local development and
break-glass), and JWTs verified against an OIDC issuer's JWKS. Both yield a :class:`Principal`
holding per-namespace roles; ``authorize`` is the one place that decides.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import jwt

from ._settings import JwtSettings, SettingsError, valid_namespace

Operation = Literal["decode", "encode"]
ROLES = frozenset({"decode", "encode"})
ALL_NAMESPACES = "*"
# Temporal's own permission names (default JWT claim mapper) mapped onto codec roles: reading a
# history needs decode; anyone who may write to a namespace may also encode inputs for it.
TEMPORAL_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "read": frozenset({"decode"}),
    "write": frozenset({"encode"}),
    "worker": frozenset({"encode"}),
    "admin": frozenset({"encode"}),
    "decode": frozenset({"decode"}),
    "encode": frozenset({"encode"}),
}
SYSTEM_NAMESPACE = "temporal-system"
_HEX64 = re.compile(r"[0-9a-f]{64}")
# PyJWKClient refetches the JWKS on every unknown `kid`; bound that so tokens with random kids
# cannot turn the server into a JWKS request amplifier.
_MIN_JWKS_REFRESH_SECONDS = 30.0


@dataclass(frozen=True)
class Principal:
    subject: str
    method: Literal["static", "jwt", "none"]
    grants: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def roles_for(self, namespace: str) -> frozenset[str]:
        return self.grants.get(namespace, frozenset()) | self.grants.get(ALL_NAMESPACES, frozenset())


class AuthError(Exception):
    """A refused request. ``reason`` is a bounded metrics label; the message is for the caller."""

    def __init__(
        self, status: int, reason: str, message: str, subject: str | None = None, method: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.subject = subject
        self.method = method


def authorize(principal: Principal, namespace: str, operation: Operation) -> None:
    roles = principal.roles_for(namespace)
    if not roles:
        raise AuthError(
            403,
            "namespace_denied",
            f"you have no codec access to namespace {namespace!r}",
            principal.subject,
            principal.method,
        )
    if operation == "encode" and "encode" not in roles:
        raise AuthError(
            403,
            "role_denied",
            f"encoding for namespace {namespace!r} requires the encode role",
            principal.subject,
            principal.method,
        )


def _grants(pairs: Iterable[tuple[str, Iterable[str]]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for namespace, roles in pairs:
        out.setdefault(namespace, set()).update(roles)
    return {ns: frozenset(r) for ns, r in out.items() if r}


class StaticTokens:
    """``{"<sha256 hex of token>": {"subject", "namespaces", "roles"}}``: digests only on disk."""

    def __init__(self, entries: Mapping[str, Principal]) -> None:
        self._entries = dict(entries)

    def __repr__(self) -> str:
        return f"StaticTokens({len(self._entries)} tokens)"

    @classmethod
    def from_file(cls, path: Path) -> StaticTokens:
        label = f"CODEC_SERVER_TOKENS_FILE={path}"
        try:
            document = json.loads(path.read_bytes())
        except OSError as exc:
            raise SettingsError(f"cannot read {label} ({exc.strerror or exc})") from None
        except ValueError:
            raise SettingsError(f"{label} is not valid JSON") from None
        if not isinstance(document, dict) or not document:
            raise SettingsError(f'{label} must be a non-empty object {{"<sha256 hex of token>": {{...}}}}')
        entries: dict[str, Principal] = {}
        for n, (digest, entry) in enumerate(document.items(), start=1):
            where = f"entry {n} of {label}"
            if not _HEX64.fullmatch(digest):
                # Not echoed: a raw token pasted where its digest belongs must not reach a log.
                raise SettingsError(
                    f"{where}: the key must be the lowercase SHA-256 hex digest of the token "
                    "(printf %s TOKEN | sha256sum), never the token itself"
                )
            if not isinstance(entry, dict):
                raise SettingsError(f"{where} must be an object with subject, namespaces and roles")
            subject, namespaces, roles = entry.get("subject"), entry.get("namespaces"), entry.get("roles")
            if not isinstance(subject, str) or not subject.strip():
                raise SettingsError(f'{where} needs a "subject" (who the token belongs to)')
            if (
                not isinstance(namespaces, list)
                or not namespaces
                or not all(
                    isinstance(ns, str) and (ns == ALL_NAMESPACES or valid_namespace(ns)) for ns in namespaces
                )
            ):
                raise SettingsError(f'{where} needs "namespaces": a non-empty list of namespace names or "*"')
            if not isinstance(roles, list) or not roles or not set(roles) <= ROLES:
                raise SettingsError(f'{where} needs "roles": a non-empty list of "decode" and/or "encode"')
            unknown = set(entry) - {"subject", "namespaces", "roles"}
            if unknown:
                raise SettingsError(f"{where} has unknown field(s) {', '.join(sorted(unknown))}")
            entries[digest] = Principal(subject, "static", _grants((ns, roles) for ns in namespaces))
        return cls(entries)

    def lookup(self, token: str) -> Principal | None:
        return self._entries.get(hashlib.sha256(token.encode()).hexdigest())


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    # Exact name first (Auth0-style URL claims contain dots), then a dotted path
    # (Keycloak-style realm_access.roles).
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> list[str]:
    """A claim as a list of strings: a JSON list, or one string separated by spaces or commas."""
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value) if v]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def grants_from_claims(claims: Mapping[str, Any], settings: JwtSettings) -> dict[str, frozenset[str]]:
    namespaces = _strings(_claim(claims, settings.namespaces_claim))
    roles = [r for r in _strings(_claim(claims, settings.roles_claim)) if r in ROLES]
    pairs: list[tuple[str, Iterable[str]]] = [(ns, roles) for ns in namespaces]
    for entry in _strings(_claim(claims, settings.permissions_claim)):
        namespace, sep, permission = entry.rpartition(":")
        if not sep or not namespace:
            continue
        mapped = TEMPORAL_PERMISSIONS.get(permission.lower(), frozenset())
        if namespace == SYSTEM_NAMESPACE and permission.lower() == "admin":
            # Temporal's system admin may act on every namespace; mirror that here.
            namespace = ALL_NAMESPACES
        pairs.append((namespace, mapped))
    return _grants(pairs)


_JWT_FAILURES: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "the bearer token has expired"),
    (
        jwt.InvalidAudienceError,
        "wrong_audience",
        "the bearer token was not issued for this codec server (audience)",
    ),
    (jwt.InvalidIssuerError, "wrong_issuer", "the bearer token comes from an untrusted issuer"),
    (jwt.ImmatureSignatureError, "not_yet_valid", "the bearer token is not valid yet"),
    (jwt.MissingRequiredClaimError, "invalid_token", "the bearer token lacks a required claim"),
    (jwt.InvalidSignatureError, "bad_signature", "the bearer token signature does not verify"),
)


class JwtVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._client = jwt.PyJWKClient(settings.jwks_url, cache_jwk_set=True, lifespan=300, timeout=5)
        self._lock = threading.Lock()
        self._last_refresh = float("-inf")

    async def authenticate(self, token: str) -> Principal:
        # PyJWKClient fetches with blocking urllib; keep it off the event loop.
        return await anyio.to_thread.run_sync(self._verify, token)

    def _signing_key(self, kid: str | None) -> Any:
        def find(refresh: bool) -> Any:
            keys = self._client.get_jwk_set(refresh=refresh).keys
            if kid is None:
                return keys[0] if len(keys) == 1 else None
            return next((k for k in keys if k.key_id == kid), None)

        try:
            key = find(False)
            if key is None:
                with self._lock:
                    now = time.monotonic()
                    if now - self._last_refresh >= _MIN_JWKS_REFRESH_SECONDS:
                        self._last_refresh = now
                        key = find(True)
        except jwt.PyJWKClientConnectionError:
            raise AuthError(
                503, "jwks_unavailable", "the token issuer's signing keys cannot be fetched; try again later"
            ) from None
        except jwt.PyJWTError:
            raise AuthError(503, "jwks_unavailable", "the token issuer's signing keys are unusable") from None
        if key is None:
            raise AuthError(401, "unknown_signing_key", "the bearer token is signed with an unknown key")
        return key

    def _verify(self, token: str) -> Principal:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError(
                401, "invalid_token", "the bearer token is not a valid JWT or known token"
            ) from None
        if header.get("alg") not in s.algorithms:
            raise AuthError(
                401, "invalid_token", "the bearer token uses a signing algorithm this server does not accept"
            )
        kid = header.get("kid")
        key = self._signing_key(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(s.algorithms),
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "aud"] + (["iss"] if s.issuer else [])},
            )
        except jwt.InvalidTokenError as exc:
            for kind, reason, message in _JWT_FAILURES:
                if isinstance(exc, kind):
                    raise AuthError(401, reason, message) from None
            raise AuthError(401, "invalid_token", "the bearer token is not valid") from None
        subject = _claim(claims, s.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise AuthError(
                401, "invalid_token", f"the bearer token has no {s.subject_claim!r} claim to identify you"
            )
        return Principal(subject[:256], "jwt", grants_from_claims(claims, s))


ANONYMOUS = Principal("anonymous", "none", {ALL_NAMESPACES: frozenset({"encode"})})


class Authenticator:
    """Bearer header -> Principal, trying static tokens first, then JWT."""

    def __init__(
        self,
        static: StaticTokens | None,
        verifier: JwtVerifier | None,
        disabled: bool = False,
        anonymous_role: str | None = None,
    ) -> None:
        self.static = static
        self.verifier = verifier
        self.disabled = disabled
        self.anonymous = (
            Principal("anonymous", "none", {ALL_NAMESPACES: frozenset({anonymous_role})})
            if anonymous_role
            else None
        )

    @property
    def methods(self) -> list[str]:
        if self.disabled:
            return ["none"]
        return [m for m, on in (("static", self.static), ("jwt", self.verifier)) if on]

    async def authenticate(self, authorization: str | None) -> Principal:
        if self.disabled:
            return ANONYMOUS
        if not authorization and self.anonymous is not None:
            return self.anonymous
        if not authorization:
            raise AuthError(401, "missing_token", "send an Authorization: Bearer <token> header")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(401, "malformed_header", "the Authorization header must be 'Bearer <token>'")
        if self.static is not None:
            principal = self.static.lookup(token)
            if principal is not None:
                return principal
        if self.verifier is not None and token.count(".") == 2:
            return await self.verifier.authenticate(token)
        raise AuthError(401, "unknown_token", "the bearer token is not valid")
