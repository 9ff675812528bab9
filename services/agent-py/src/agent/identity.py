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

The caller's own token comes from ``AGENT_TOKEN_FILE`` (or ``AGENT_TOKEN``). In a cluster the
same check sits behind an identity provider (OIDC) at the portal; the file is the local form.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

PRINCIPALS_FILE_ENV = "AGENT_PRINCIPALS_FILE"
TOKEN_FILE_ENV = "AGENT_TOKEN_FILE"
TOKEN_ENV = "AGENT_TOKEN"


class IdentityError(Exception):
    """No authenticated identity, or one without the right to do this; one sentence."""


@dataclass(frozen=True)
class Principal:
    subject: str
    customer_id: str | None = None
    """Set for a customer's own token: the only customer it may act for."""
    operator: bool = False

    def acting_for(self, customer_id: str | None) -> tuple[str, str]:
        """(customer id, how the identity was established) for a new conversation."""
        if self.operator:
            if not customer_id:
                raise IdentityError(f"operator {self.subject} must name the customer to act for (--customer-id)")
            return customer_id, f"operator {self.subject} acting for {customer_id}"
        assert self.customer_id is not None
        if customer_id and customer_id != self.customer_id:
            raise IdentityError(f"{self.subject} may act only for customer {self.customer_id}, not {customer_id}")
        return self.customer_id, f"customer {self.subject}"

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


def principal_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> Principal:
    """The caller's principal from its token and the deployment's principals file."""
    principals_file = environ.get(PRINCIPALS_FILE_ENV)
    if not principals_file:
        raise IdentityError(
            f"no authenticated identity: set {PRINCIPALS_FILE_ENV} (the principals this deployment knows) "
            f"and {TOKEN_FILE_ENV} (your token); on a dev stack `eval \"$(.venv/bin/python -m devstack env)\"` does"
        )
    token = environ.get(TOKEN_ENV)
    if not token and (token_file := environ.get(TOKEN_FILE_ENV)):
        try:
            token = Path(token_file).read_text()
        except OSError as err:
            raise IdentityError(f"cannot read the token file {token_file}: {err.strerror}") from None
    if not token or not token.strip():
        raise IdentityError(f"no authenticated identity: set {TOKEN_FILE_ENV} (or {TOKEN_ENV}) to your token")
    return Principals.load(Path(principals_file)).verify(token)


def principals_document(entries: list[tuple[str, str, str | None]]) -> dict[str, object]:
    """A principals file's content from (subject, token, customer id or None for an operator)."""
    principals: list[dict[str, object]] = []
    for subject, token, customer_id in entries:
        entry: dict[str, object] = {"subject": subject, "token_sha256": _digest(token)}
        entry.update({"customer_id": customer_id} if customer_id else {"operator": True})
        principals.append(entry)
    return {"principals": principals}
