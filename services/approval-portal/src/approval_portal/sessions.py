"""Signed session cookies and CSRF tokens, with no server-side state (replicas share a secret).

A session cookie is ``<base64url JSON>.<HMAC-SHA256>`` under the portal's session secret; it
names the approver (subject, issuer, whether an operator) and when it expires (the sooner of the
portal's session lifetime and the login token's own ``exp``). It holds no token: a stolen cookie
is worth one session, and the login token never leaves the login request.

CSRF: every state-changing request made with the cookie must carry the session's CSRF token (a
hidden form field or the ``X-CSRF-Token`` header), an HMAC of the session's random id, so a page
on another site cannot forge it. The login form has its own double-submit token (a random
cookie and its HMAC in the form), so nobody can log a victim into the attacker's session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from dataclasses import asdict, dataclass

SESSION_COOKIE = "portal_session"
LOGIN_COOKIE = "portal_login"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Session:
    subject: str
    operator: bool
    issuer: str | None
    expires: int
    """Unix seconds."""
    sid: str
    """Random; the CSRF token is derived from it."""


class Sessions:
    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the session secret must hold at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()

    def issue(
        self, subject: str, *, operator: bool, issuer: str | None, not_after: int | None = None
    ) -> tuple[str, Session]:
        """A new session's cookie value and the session."""
        expires = int(time.time()) + self.ttl_s
        if not_after is not None:
            expires = min(expires, not_after)
        session = Session(subject, operator, issuer, expires, secrets.token_urlsafe(16))
        body = base64.urlsafe_b64encode(json.dumps(asdict(session), separators=(",", ":")).encode()).decode()
        return f"{body}.{self._mac('session', body)}", session

    def read(self, value: str | None) -> Session | None:
        """The session a cookie names, or None when it is missing, forged or expired."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            fields = json.loads(base64.urlsafe_b64decode(body.encode()))
            session = Session(**fields)
        except (ValueError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.sid)

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented), self.csrf_token(session))

    def login_nonce(self) -> tuple[str, str]:
        """(cookie value, form token) of a login form."""
        nonce = secrets.token_urlsafe(16)
        return nonce, self._mac("login", nonce)

    def login_ok(self, nonce: str | None, presented: str | None) -> bool:
        return bool(nonce) and bool(presented) and hmac.compare_digest(str(presented), self._mac("login", str(nonce)))


def is_loopback(hostname: str | None) -> bool:
    """A browser on this very machine: the only place a cookie may travel without TLS."""
    if not hostname:
        return False
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False
