"""Who may start and speak in a conversation: authenticated principals, not free text.

A conversation acts for one customer (``ConversationStart.customer_id``), and every business
operation it makes carries that id, so the business service refuses any other customer's order
or ticket whatever the model asks. The id must come from an authenticated principal, which the
front doors (the ``agent`` CLI, and any portal or MCP server) establish here:

- a **customer** principal holds a token bound to one customer id: it may start conversations
  for that customer and speak in them, nothing else;
- an **operator** principal (a support lead) may act for any customer, named explicitly, and may
  decide approvals; the conversation records it as acting for the customer.

Principals are kept in ``AGENT_PRINCIPALS_FILE`` (JSON, mode 0600) by the SHA-256 of their
token, never the token itself, as the codec server keeps its tokens::

    {"principals": [
      {"subject": "ada@example.com", "token_sha256": "<hex>", "customer_id": "cust-ada"},
      {"subject": "lead-ana", "token_sha256": "<hex>", "operator": true}
    ]}

The caller's own token comes from ``AGENT_TOKEN_FILE`` (or ``AGENT_TOKEN``).

In production the token is a JWT from the organisation's identity provider (OIDC), verified
against the issuer's JWKS by the same verifier as the codec server's (``httpkit.jwks``: signature,
issuer, audience, expiry, asymmetric algorithms only). Its claims map onto the same
:class:`Principal`: ``AGENT_OIDC_CUSTOMER_CLAIM`` (default ``customer_id``) names the one customer
a customer's token acts for; the role ``AGENT_OIDC_OPERATOR_ROLE`` (default ``agent-operator``)
in the claim ``AGENT_OIDC_ROLES_CLAIM`` (default ``roles``) makes an operator. Both methods may be
configured at once: a JWT is verified against the issuer, any other token against the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from httpkit.jwks import JwksVerifier, JwtPolicy, TokenRejected, claim, looks_like_jwt, parse_algorithms, strings

PRINCIPALS_FILE_ENV = "AGENT_PRINCIPALS_FILE"
TOKEN_FILE_ENV = "AGENT_TOKEN_FILE"
TOKEN_ENV = "AGENT_TOKEN"
OIDC_ISSUER_ENV = "AGENT_OIDC_ISSUER"
OIDC_AUDIENCE_ENV = "AGENT_OIDC_AUDIENCE"
OIDC_JWKS_URL_ENV = "AGENT_OIDC_JWKS_URL"
DEFAULT_CUSTOMER_CLAIM = "customer_id"
DEFAULT_ROLES_CLAIM = "roles"
DEFAULT_OPERATOR_ROLE = "agent-operator"
# The business contract's bound on customer_id (nexus/business/schemas: maxLength 64).
MAX_CUSTOMER_ID_CHARS = 64


class IdentityError(Exception):
    """No authenticated identity, or one without the right to do this; one sentence."""


@dataclass(frozen=True)
class Principal:
    subject: str
    customer_id: str | None = None
    """Set for a customer's own token: the only customer it may act for."""
    operator: bool = False
    issuer: str | None = None
    """The OIDC issuer that vouched for the token; None for a principals-file token."""

    def acting_for(self, customer_id: str | None) -> tuple[str, str]:
        """(customer id, how the identity was established) for a new conversation."""
        if self.operator:
            if not customer_id:
                raise IdentityError(f"operator {self.subject} must name the customer to act for (--customer-id)")
            return customer_id, f"operator {self.subject} acting for {customer_id}{self._vouched}"
        assert self.customer_id is not None
        if customer_id and customer_id != self.customer_id:
            raise IdentityError(f"{self.subject} may act only for customer {self.customer_id}, not {customer_id}")
        return self.customer_id, f"customer {self.subject}{self._vouched}"

    @property
    def _vouched(self) -> str:
        # Recorded with the conversation, so an auditor sees which issuer established the identity.
        return f" (OIDC {self.issuer})" if self.issuer else ""

    def may_speak_in(self, customer_id: str) -> bool:
        return self.operator or self.customer_id == customer_id


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principals:
    by_digest: dict[str, Principal]

    @classmethod
    def load(cls, path: Path) -> Principals:
        try:
            document = json.loads(path.read_text())
            entries = document["principals"]
            by_digest = {}
            for entry in entries:
                operator = entry.get("operator") is True
                customer_id = entry.get("customer_id")
                if operator == bool(customer_id):
                    raise ValueError(f"{entry.get('subject')!r} must be either an operator or one customer's")
                by_digest[str(entry["token_sha256"]).lower()] = Principal(str(entry["subject"]), customer_id, operator)
        except FileNotFoundError:
            raise IdentityError(f"the principals file {path} does not exist; set {PRINCIPALS_FILE_ENV}") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise IdentityError(f"the principals file {path} is not valid: {err}") from None
        return cls(by_digest)

    def verify(self, token: str) -> Principal:
        """The principal holding ``token``; compared in constant time over every entry."""
        presented = _digest(token.strip())
        found = None
        for digest, principal in self.by_digest.items():
            if hmac.compare_digest(digest, presented):
                found = principal
        if found is None:
            raise IdentityError("the token is not one of the principals this deployment knows")
        return found


@dataclass(frozen=True)
class OidcSettings:
    """How a JWT from the identity provider becomes a :class:`Principal` (``AGENT_OIDC_*``)."""

    policy: JwtPolicy
    customer_claim: str = DEFAULT_CUSTOMER_CLAIM
    roles_claim: str = DEFAULT_ROLES_CLAIM
    operator_role: str = DEFAULT_OPERATOR_ROLE
    subject_claim: str = "sub"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OidcSettings | None:
        """None when OIDC is not configured; IdentityError when it is, incompletely."""

        def get(name: str) -> str:
            return environ.get(f"AGENT_OIDC_{name}", "").strip()

        issuer, audience, jwks_url = get("ISSUER"), get("AUDIENCE"), get("JWKS_URL")
        if not (issuer or audience or jwks_url):
            return None
        # Issuer and audience are both required: without the audience a token minted for any
        # other application of the same identity provider would start conversations here.
        missing = [
            name
            for name, value in ((OIDC_ISSUER_ENV, issuer), (OIDC_AUDIENCE_ENV, audience), (OIDC_JWKS_URL_ENV, jwks_url))
            if not value
        ]
        if missing:
            raise IdentityError(f"OIDC identities are half configured: set {' and '.join(missing)} too")
        if not jwks_url.startswith(("https://", "http://")):
            raise IdentityError(f"{OIDC_JWKS_URL_ENV} must be an http(s) URL of the issuer's JWKS")
        try:
            algorithms = parse_algorithms(get("ALGORITHMS"), "AGENT_OIDC_ALGORITHMS")
        except ValueError as err:
            raise IdentityError(str(err)) from None
        leeway = get("LEEWAY_SECONDS") or "10"
        if not leeway.isdigit():
            raise IdentityError("AGENT_OIDC_LEEWAY_SECONDS must be a whole number of seconds")
        return cls(
            JwtPolicy(
                jwks_url=jwks_url, audience=audience, issuer=issuer, algorithms=algorithms, leeway_seconds=int(leeway)
            ),
            customer_claim=get("CUSTOMER_CLAIM") or DEFAULT_CUSTOMER_CLAIM,
            roles_claim=get("ROLES_CLAIM") or DEFAULT_ROLES_CLAIM,
            operator_role=get("OPERATOR_ROLE") or DEFAULT_OPERATOR_ROLE,
            subject_claim=get("SUBJECT_CLAIM") or "sub",
        )

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """The principal verified ``claims`` stand for; an operator's role wins over a customer
        claim (an identity provider may give staff a customer id too)."""
        subject = claim(claims, self.subject_claim)
        if not isinstance(subject, str) or not subject.strip():
            raise IdentityError(f"the token has no {self.subject_claim!r} claim to say who you are")
        issuer = self.policy.issuer
        if self.operator_role in strings(claim(claims, self.roles_claim)):
            return Principal(subject[:256], operator=True, issuer=issuer)
        customer_id = claim(claims, self.customer_claim)
        if not isinstance(customer_id, str) or not customer_id.strip():
            raise IdentityError(
                f"the token names no customer (claim {self.customer_claim!r}) and has no "
                f"{self.operator_role!r} role, so it may not act for anyone"
            )
        if len(customer_id.strip()) > MAX_CUSTOMER_ID_CHARS:
            # Refused, not cut: a shortened id could name another customer.
            raise IdentityError(f"the token's {self.customer_claim!r} claim is longer than a customer id may be")
        return Principal(subject[:256], customer_id.strip(), issuer=issuer)


class Identities:
    """The deployment's ways of verifying a token: a principals file, an OIDC issuer, or both.
    Built once per process (a portal keeps it: the JWKS is cached between tokens)."""

    def __init__(self, principals_file: Path | None, oidc: OidcSettings | None) -> None:
        self._principals_file = principals_file
        self._oidc = oidc
        self._verifier = JwksVerifier(oidc.policy, audience_label="this agent deployment") if oidc is not None else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Identities:
        oidc = OidcSettings.from_env(environ)
        principals_file = environ.get(PRINCIPALS_FILE_ENV)
        if not principals_file and oidc is None:
            raise IdentityError(
                f"no authenticated identity: set {PRINCIPALS_FILE_ENV} (the principals this deployment knows) "
                f"or {OIDC_ISSUER_ENV}, {OIDC_AUDIENCE_ENV} and {OIDC_JWKS_URL_ENV} (your identity provider), "
                f'and {TOKEN_FILE_ENV} (your token); on a dev stack `eval "$(.venv/bin/python -m devstack env)"` does'
            )
        return cls(Path(principals_file) if principals_file else None, oidc)

    def verify(self, token: str) -> Principal:
        token = token.strip()
        if self._oidc is not None and self._verifier is not None and looks_like_jwt(token):
            try:
                claims = self._verifier.verify(token)
            except TokenRejected as err:
                raise IdentityError(err.message) from None
            return self._oidc.principal(claims)
        if self._principals_file is None:
            raise IdentityError("the token is not a JWT, and this deployment accepts only its identity provider's")
        return Principals.load(self._principals_file).verify(token)


def token_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """The caller's own token (``AGENT_TOKEN``, else the file ``AGENT_TOKEN_FILE`` names)."""
    token = environ.get(TOKEN_ENV)
    if not token and (token_file := environ.get(TOKEN_FILE_ENV)):
        try:
            token = Path(token_file).read_text()
        except OSError as err:
            raise IdentityError(f"cannot read the token file {token_file}: {err.strerror}") from None
    if not token or not token.strip():
        raise IdentityError(f"no authenticated identity: set {TOKEN_FILE_ENV} (or {TOKEN_ENV}) to your token")
    return token


def principal_from_env(environ: Mapping[str, str] = os.environ) -> Principal:
    """The caller's principal from its token and the deployment's identity settings."""
    identities = Identities.from_env(environ)
    return identities.verify(token_from_env(environ))


def principals_document(entries: list[tuple[str, str, str | None]]) -> dict[str, object]:
    """A principals file's content from (subject, token, customer id or None for an operator)."""
    principals: list[dict[str, object]] = []
    for subject, token, customer_id in entries:
        entry: dict[str, object] = {"subject": subject, "token_sha256": _digest(token)}
        if customer_id:
            entry["customer_id"] = customer_id
        else:
            entry["operator"] = True
        principals.append(entry)
    return {"principals": principals}
