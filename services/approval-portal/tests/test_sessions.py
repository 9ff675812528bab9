"""The portal's session cookies and CSRF tokens (no server)."""

from __future__ import annotations

import time

import pytest

from approval_portal.sessions import Sessions, is_loopback

SECRET = b"s" * 32


def test_a_session_reads_back_and_a_forged_or_foreign_one_does_not() -> None:
    sessions = Sessions(SECRET, ttl_s=600)
    value, session = sessions.issue("lead-ana", operator=True, issuer=None)
    assert sessions.read(value) == session
    body, mac = value.split(".")
    assert sessions.read(f"{body}.{'0' * len(mac)}") is None
    assert sessions.read(f"{body[:-2]}xx.{mac}") is None
    assert Sessions(b"t" * 32, ttl_s=600).read(value) is None  # another deployment's secret
    assert sessions.read(None) is None and sessions.read("garbage") is None


def test_a_session_never_outlives_its_login_token() -> None:
    sessions = Sessions(SECRET, ttl_s=3600)
    value, session = sessions.issue("lead-ana", operator=True, issuer="https://idp", not_after=int(time.time()) - 1)
    assert sessions.read(value) is None
    _, later = sessions.issue("lead-ana", operator=True, issuer=None, not_after=int(time.time()) + 60)
    assert later.expires <= int(time.time()) + 60


def test_csrf_tokens_are_bound_to_one_session() -> None:
    sessions = Sessions(SECRET, ttl_s=600)
    _, one = sessions.issue("lead-ana", operator=True, issuer=None)
    _, other = sessions.issue("lead-ana", operator=True, issuer=None)
    assert sessions.csrf_ok(one, sessions.csrf_token(one))
    assert not sessions.csrf_ok(one, sessions.csrf_token(other))
    assert not sessions.csrf_ok(one, None) and not sessions.csrf_ok(one, "")
    nonce, token = sessions.login_nonce()
    assert sessions.login_ok(nonce, token) and not sessions.login_ok(nonce + "x", token)
    assert not sessions.login_ok(None, token)


def test_short_secrets_are_refused_and_only_loopback_goes_without_secure_cookies() -> None:
    with pytest.raises(ValueError):
        Sessions(b"short", ttl_s=600)
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("portal.example.com", "10.0.0.4", "", None))
