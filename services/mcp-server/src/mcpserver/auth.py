"""Who is calling, and which tools they may call.

Two bearer-token methods, as the codec server has: static tokens kept by their SHA-256 digest in
a file (local development, break-glass), and JWTs verified against an OIDC issuer's JWKS by the
project's one verifier (:mod:`httpkit.jwks`). Both yield a :class:`Caller` holding *rights*,
which are OAuth scopes (``knowledge:read`` ...) so an identity provider can grant them as it
grants any scope, and the protected resource metadata can list them (``scopes_supported``).

Static tokens file (``MCP_TOKENS_FILE``, JSON, keys are ``sha256(token)`` in lowercase hex)::

    {"<sha256 hex>": {"subject": "ada@example.com", "rights": ["knowledge:read", "orders:read"],
                      "customer_id": "cust-ada"}}

A caller with a ``customer_id`` acts for that customer only (the business service refuses any
other customer's order or ticket); a caller without one is an operator and may act for anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from httpkit.jwks import JwksVerifier, JwtPolicy, TokenRejected, claim, looks_like_jwt, strings

KNOWLEDGE_READ = "knowledge:read"
ORDERS_READ = "orders:read"
REFUNDS_WRITE = "refunds:write"
TICKETS_READ = "tickets:read"
TICKETS_WRITE = "tickets:write"
CONVERSATIONS_WRITE = "conversations:write"
RIGHTS = (KNOWLEDGE_READ, ORDERS_READ, REFUNDS_WRITE, TICKETS_READ, TICKETS_WRITE, CONVERSATIONS_WRITE)
"""Every right a token may hold: the scopes this resource server advertises."""
MAX_CUSTOMER_ID_CHARS = 64


class AuthError(Exception):
    """A refused token or call: ``reason`` is a bounded label (audit, metrics), the message one
    sentence for the caller, never holding the token."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Caller:
    subject: str
    method: Literal["static", "jwt"]
    rights: frozenset[str] = field(default_factory=frozenset)
    customer_id: str | None = None

    def require(self, right: str, tool: str) -> None:
        if right not in self.rights:
            raise AuthError("right_denied", f"{tool} needs the {right} right, which {self.subject}'s token lacks")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _rights(raw: object, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(r, str) and r in RIGHTS for r in raw):
        raise ValueError(f'{where} needs "rights": a non-empty list of {", ".join(RIGHTS)}')
    return frozenset(raw)


class StaticTokens:
    """The tokens file, loaded once; compared in constant time over every entry."""

    def __init__(self, entries: Mapping[str, Caller]) -> None:
        self._entries = dict(entries)

    def __repr__(self) -> str:
        return f"StaticTokens({len(self._entries)} tokens)"

    @classmethod
    def from_file(cls, path: Path) -> StaticTokens:
        label = f"MCP_TOKENS_FILE={path}"
        try:
            document = json.loads(path.read_bytes())
        except OSError as err:
            raise ValueError(f"cannot read {label} ({err.strerror or err})") from None
        except ValueError:
            raise ValueError(f"{label} is not valid JSON") from None
        if not isinstance(document, dict) or not document:
            raise ValueError(f'{label} must be a non-empty object {{"<sha256 hex of token>": {{...}}}}')
        entries: dict[str, Caller] = {}
        for n, (key, entry) in enumerate(document.items(), start=1):
            where = f"entry {n} of {label}"
            if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
                # Not echoed: a raw token pasted where its digest belongs must not reach a log.
                raise ValueError(f"{where}: the key must be the lowercase SHA-256 hex digest of the token")
            if not isinstance(entry, dict) or not isinstance(entry.get("subject"), str) or not entry["subject"]:
                raise ValueError(f'{where} must be an object with a "subject" and "rights"')
            customer_id = entry.get("customer_id")
            if customer_id is not None and (not isinstance(customer_id, str) or not customer_id.strip()):
                raise ValueError(f'{where}: "customer_id" must be a customer id, or left out for an operator')
            unknown = set(entry) - {"subject", "rights", "customer_id"}
            if unknown:
                raise ValueError(f"{where} has unknown field(s) {', '.join(sorted(unknown))}")
            entries[key] = Caller(entry["subject"], "static", _rights(entry.get("rights"), where), customer_id)
        return cls(entries)

    def lookup(self, token: str) -> Caller | None:
        presented = digest(token)
        found = None
        for key, caller in self._entries.items():
            if hmac.compare_digest(key, presented):
                found = caller
        return found


@dataclass(frozen=True)
class OidcMapping:
    """How a verified JWT's claims become a caller: rights from the OAuth ``scope`` claim
    (space-separated) or a list claim (``scp``), the customer from ``customer_claim``."""

    policy: JwtPolicy
    scope_claim: str = "scope"
    customer_claim: str = "customer_id"

    def caller(self, claims: Mapping[str, Any]) -> Caller:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise AuthError("no_subject", "the token has no sub claim to say who you are")
        raw = claim(claims, self.scope_claim)
        scopes = raw.split() if isinstance(raw, str) else strings(raw)
        customer_id = claim(claims, self.customer_claim)
        if customer_id is not None and (not isinstance(customer_id, str) or len(customer_id) > MAX_CUSTOMER_ID_CHARS):
            raise AuthError("bad_customer", f"the token's {self.customer_claim!r} claim is not a customer id")
        return Caller(subject[:256], "jwt", frozenset(s for s in scopes if s in RIGHTS), customer_id or None)


class Authenticator:
    """The deployment's token methods: a JWT goes to the issuer, any other token to the file."""

    def __init__(self, static: StaticTokens | None, oidc: OidcMapping | None) -> None:
        self._static = static
        self._oidc = oidc
        self._verifier = JwksVerifier(oidc.policy, audience_label="this MCP server") if oidc else None

    def authenticate(self, token: str) -> Caller:
        token = token.strip()
        if not token:
            raise AuthError("missing_token", "a bearer token is required")
        if self._oidc is not None and self._verifier is not None and looks_like_jwt(token):
            try:
                claims = self._verifier.verify(token)
            except TokenRejected as err:
                raise AuthError(err.reason, err.message) from None
            return self._oidc.caller(claims)
        caller = self._static.lookup(token) if self._static is not None else None
        if caller is None:
            raise AuthError("unknown_token", "the token is not one this MCP server accepts")
        return caller
