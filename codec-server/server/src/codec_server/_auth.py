"""Who is calling, and may they do this to that namespace.

Two bearer-token methods: static tokens from a file of SHA-256 digests (local development and
break-glass), and JWTs verified against an OIDC issuer's JWKS. Both yield a :class:`Principal`
holding per-namespace roles; ``authorize`` is the one place that decides.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from httpkit.jwks import JwksVerifier, TokenRejected, claim, looks_like_jwt, strings

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
                or not all(isinstance(ns, str) and (ns == ALL_NAMESPACES or valid_namespace(ns)) for ns in namespaces)
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


def grants_from_claims(claims: Mapping[str, Any], settings: JwtSettings) -> dict[str, frozenset[str]]:
    namespaces = strings(claim(claims, settings.namespaces_claim))
    roles = [r for r in strings(claim(claims, settings.roles_claim)) if r in ROLES]
    pairs: list[tuple[str, Iterable[str]]] = [(ns, roles) for ns in namespaces]
    for entry in strings(claim(claims, settings.permissions_claim)):
        namespace, sep, permission = entry.rpartition(":")
        if not sep or not namespace:
            continue
        mapped = TEMPORAL_PERMISSIONS.get(permission.lower(), frozenset())
        if namespace == SYSTEM_NAMESPACE and permission.lower() == "admin":
            # Temporal's system admin may act on every namespace; mirror that here.
            namespace = ALL_NAMESPACES
        pairs.append((namespace, mapped))
    return _grants(pairs)


class JwtVerifier:
    """The shared JWKS verifier (``httpkit.jwks``, also behind the agent's identities), with
    its claims mapped onto codec roles."""

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._verifier = JwksVerifier(settings.policy, audience_label="this codec server")

    async def authenticate(self, token: str) -> Principal:
        # PyJWKClient fetches with blocking urllib; keep it off the event loop.
        return await anyio.to_thread.run_sync(self._verify, token)

    def _verify(self, token: str) -> Principal:
        s = self.settings
        try:
            claims = self._verifier.verify(token)
        except TokenRejected as exc:
            raise AuthError(503 if exc.unavailable else 401, exc.reason, exc.message) from None
        subject = claim(claims, s.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise AuthError(401, "invalid_token", f"the bearer token has no {s.subject_claim!r} claim to identify you")
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
            Principal("anonymous", "none", {ALL_NAMESPACES: frozenset({anonymous_role})}) if anonymous_role else None
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
        if self.verifier is not None and looks_like_jwt(token):
            return await self.verifier.authenticate(token)
        raise AuthError(401, "unknown_token", "the bearer token is not valid")
