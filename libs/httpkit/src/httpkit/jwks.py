"""Bearer JWTs verified against an OIDC issuer's JWKS: the one verifier of the project.

The codec server (who may decode which namespace) and the agent's front doors (which customer a
conversation acts for) both accept tokens from an identity provider. What makes a token
acceptable is the same for both and easy to get subtly wrong, so it lives here once:

- the signature verifies with a key of the issuer's JWKS, chosen by the token's ``kid``;
- the algorithm is one of an allow-list of *asymmetric* algorithms (never ``none``, never
  ``HS*``: with a JWKS the verifier holds public keys, and an HMAC check keyed with a public key
  would let anyone forge tokens);
- ``exp`` and ``aud`` are required, and ``iss`` too when an issuer is configured;
- an unknown ``kid`` refetches the JWKS (keys rotate) at most every ``MIN_JWKS_REFRESH_SECONDS``,
  so tokens with random kids cannot make the verifier hammer the issuer.

What a valid token *means* (namespaces and roles, a customer id) is the caller's mapping of the
returned claims, with :func:`claim` and :func:`strings` for the usual claim shapes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "JwksVerifier",
    "JwtPolicy",
    "TokenRejected",
    "claim",
    "looks_like_jwt",
    "parse_algorithms",
    "strings",
]

DEFAULT_ALGORITHMS = ("RS256", "ES256")
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# PyJWKClient refetches the JWKS on every unknown `kid`; bound that so tokens with random kids
# cannot turn a server into a JWKS request amplifier.
MIN_JWKS_REFRESH_SECONDS = 30.0


@dataclass(frozen=True)
class JwtPolicy:
    """What a token must satisfy to be accepted."""

    jwks_url: str
    audience: str
    issuer: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_seconds: int = 10


class TokenRejected(Exception):
    """A token that is not accepted. ``reason`` is a bounded label (fit for a metric); ``message``
    is one sentence for the caller; ``unavailable`` means the issuer's keys could not be had, a
    condition to retry rather than a bad token."""

    def __init__(self, reason: str, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.unavailable = unavailable


def parse_algorithms(raw: str, setting: str) -> tuple[str, ...]:
    """A comma-separated algorithm list from a setting (empty: the defaults); ``ValueError`` names
    the setting and what it may hold."""
    algorithms = tuple(a.strip() for a in raw.split(",") if a.strip()) or DEFAULT_ALGORITHMS
    bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
    if bad:
        raise ValueError(
            f"{setting} has {', '.join(bad)}; allowed (asymmetric only): {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
        )
    return algorithms


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three dot-separated parts; static tokens do not."""
    return token.count(".") == 2


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by exact name first (Auth0-style URL claims contain dots), then by dotted path
    (Keycloak-style ``realm_access.roles``); None when absent."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def strings(value: Any) -> list[str]:
    """A claim as a list of strings: a JSON list, or one string separated by spaces or commas."""
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value) if v]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _failures(audience_label: str) -> Iterable[tuple[type[Exception], str, str]]:
    # Most specific first: PyJWT's error classes derive from one another.
    return (
        (jwt.ExpiredSignatureError, "expired", "the bearer token has expired"),
        (
            jwt.InvalidAudienceError,
            "wrong_audience",
            f"the bearer token was not issued for {audience_label} (audience)",
        ),
        (jwt.InvalidIssuerError, "wrong_issuer", "the bearer token comes from an untrusted issuer"),
        (jwt.ImmatureSignatureError, "not_yet_valid", "the bearer token is not valid yet"),
        (jwt.MissingRequiredClaimError, "invalid_token", "the bearer token lacks a required claim"),
        (jwt.InvalidSignatureError, "bad_signature", "the bearer token signature does not verify"),
    )


class JwksVerifier:
    """Verifies tokens against ``policy``; thread-safe, blocking (the JWKS fetch is urllib):
    servers call :meth:`verify` from a worker thread, command-line clients directly."""

    def __init__(self, policy: JwtPolicy, *, audience_label: str = "this service") -> None:
        self.policy = policy
        self._failures = tuple(_failures(audience_label))
        self._client = jwt.PyJWKClient(policy.jwks_url, cache_jwk_set=True, lifespan=300, timeout=5)
        self._lock = threading.Lock()
        self._last_refresh = float("-inf")

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
                    if now - self._last_refresh >= MIN_JWKS_REFRESH_SECONDS:
                        self._last_refresh = now
                        key = find(True)
        except jwt.PyJWKClientConnectionError:
            raise TokenRejected(
                "jwks_unavailable",
                "the token issuer's signing keys cannot be fetched; try again later",
                unavailable=True,
            ) from None
        except jwt.PyJWTError:
            raise TokenRejected(
                "jwks_unavailable", "the token issuer's signing keys are unusable", unavailable=True
            ) from None
        if key is None:
            raise TokenRejected("unknown_signing_key", "the bearer token is signed with an unknown key")
        return key

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, once signature, algorithm, issuer, audience and expiry hold."""
        p = self.policy
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRejected("invalid_token", "the bearer token is not a valid JWT or known token") from None
        # Checked before any key is looked up: `none` and HS* never reach the signature check.
        if header.get("alg") not in p.algorithms:
            raise TokenRejected(
                "invalid_token", "the bearer token uses a signing algorithm this server does not accept"
            )
        kid = header.get("kid")
        key = self._signing_key(kid if isinstance(kid, str) else None)
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=list(p.algorithms),
                audience=p.audience,
                issuer=p.issuer,
                leeway=p.leeway_seconds,
                options={"require": ["exp", "aud"] + (["iss"] if p.issuer else [])},
            )
        except jwt.InvalidTokenError as exc:
            for kind, reason, message in self._failures:
                if isinstance(exc, kind):
                    raise TokenRejected(reason, message) from None
            raise TokenRejected("invalid_token", "the bearer token is not valid") from None
