"""Tokens, rights, call keys and the audit line: the MCP server's decisions that need no server.

JWTs are verified against a real JWKS served over HTTP (``httpkit.testing.JwksIssuer``), as the
codec server's and the agent's tests do.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from httpkit.jwks import JwtPolicy
from httpkit.testing import JwksIssuer
from mcpserver.audit import AuditLog, AuditRecord, arguments_digest
from mcpserver.auth import (
    KNOWLEDGE_READ,
    REFUNDS_WRITE,
    RIGHTS,
    Authenticator,
    AuthError,
    OidcMapping,
    StaticTokens,
    digest,
)
from mcpserver.calls import call_key
from mcpserver.settings import Settings, SettingsError


def tokens_file(tmp_path: Path, entries: dict[str, dict[str, object]]) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({digest(token): entry for token, entry in entries.items()}))
    return path


@pytest.fixture(scope="module")
def issuer() -> Iterator[JwksIssuer]:
    with JwksIssuer(audience="mcp").serve() as running:
        yield running


def test_a_static_token_maps_to_its_subject_rights_and_customer(tmp_path: Path) -> None:
    path = tokens_file(
        tmp_path,
        {
            "search-token": {"subject": "docs-bot", "rights": [KNOWLEDGE_READ]},
            "ada-token": {"subject": "ada", "rights": list(RIGHTS), "customer_id": "cust-ada"},
        },
    )
    auth = Authenticator(StaticTokens.from_file(path), None)

    search = auth.authenticate("search-token")
    assert (search.subject, search.rights, search.customer_id) == ("docs-bot", frozenset({KNOWLEDGE_READ}), None)
    search.require(KNOWLEDGE_READ, "search_knowledge")
    with pytest.raises(AuthError) as refused:
        search.require(REFUNDS_WRITE, "refund_order")
    assert refused.value.reason == "right_denied" and "refunds:write" in refused.value.message
    assert auth.authenticate("ada-token").customer_id == "cust-ada"
    for bad in ("", "  ", "nobody's-token"):
        with pytest.raises(AuthError):
            auth.authenticate(bad)


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"not-a-digest": {"subject": "a", "rights": [KNOWLEDGE_READ]}}, "digest"),
        ({"0" * 64: {"subject": "a", "rights": ["everything"]}}, "rights"),
        ({"0" * 64: {"subject": "a", "rights": [KNOWLEDGE_READ], "admin": True}}, "unknown field"),
        ({"0" * 64: {"rights": [KNOWLEDGE_READ]}}, "subject"),
        ({}, "non-empty"),
    ],
)
def test_a_bad_tokens_file_is_one_sentence_that_never_echoes_a_token(
    tmp_path: Path, document: dict[str, object], says: str
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError) as bad:
        StaticTokens.from_file(path)
    assert says in str(bad.value) and "not-a-digest" not in str(bad.value)


def test_a_jwt_grants_its_scopes_and_acts_for_its_customer(issuer: JwksIssuer) -> None:
    policy = JwtPolicy(jwks_url=issuer.url, audience="mcp", issuer=issuer.issuer)
    auth = Authenticator(None, OidcMapping(policy))

    caller = auth.authenticate(issuer.mint(scope="knowledge:read orders:read openid", customer_id="cust-ada"))
    assert caller.method == "jwt" and caller.customer_id == "cust-ada"
    assert caller.rights == frozenset({"knowledge:read", "orders:read"})  # unknown scopes are no rights
    for token in (
        issuer.mint(audience="another-app", scope="refunds:write"),
        issuer.mint(key=issuer.stranger, scope="refunds:write"),
        issuer.mint(expires_in=-120, scope="refunds:write"),
    ):
        with pytest.raises(AuthError):
            auth.authenticate(token)


def test_call_keys_name_one_callers_one_call() -> None:
    args = {"order_id": "ORD-1", "amount_cents": 100, "reason": "x"}
    same = call_key("ada", "refund_order", dict(reversed(args.items())), None)
    assert call_key("ada", "refund_order", args, None) == same  # argument order does not matter
    assert call_key("grace", "refund_order", args, None) != same  # another caller, another call
    assert call_key("ada", "refund_order", {**args, "amount_cents": 101}, None) != same
    keyed = call_key("ada", "refund_order", args, "k-1")
    assert call_key("ada", "refund_order", {}, "k-1") == keyed  # the client's key names the call
    assert call_key("ada", "refund_order", args, "k-2") != keyed
    with pytest.raises(ValueError):
        call_key("ada", "refund_order", args, "x" * 201)


def test_an_audit_line_holds_no_argument() -> None:
    out = io.StringIO()
    record = AuditRecord("refund_order", "ada", "static", "http", outcome="ok", workflow_id="tool-call-abc")
    record.arguments_sha256 = arguments_digest({"order_id": "ORD-1001", "reason": "my address is 1 Main St"}, "k")
    AuditLog(stream=out).write(record)
    line = json.loads(out.getvalue())
    assert line["event"] == "mcp_tool_call" and line["subject"] == "ada" and line["outcome"] == "ok"
    assert "ORD-1001" not in out.getvalue() and "Main St" not in out.getvalue()
    # Salted with the call's key: the same arguments of another call do not match.
    assert arguments_digest({"order_id": "ORD-1001"}, "k") != arguments_digest({"order_id": "ORD-1001"}, "j")


def test_settings_refuse_no_authentication_and_half_an_oidc_configuration() -> None:
    with pytest.raises(SettingsError, match="MCP_TOKENS_FILE"):
        Settings.from_env("127.0.0.1", 8406, {}).authenticator()
    with pytest.raises(SettingsError, match="MCP_OIDC_AUDIENCE and MCP_OIDC_JWKS_URL"):
        Settings.from_env("127.0.0.1", 8406, {"MCP_OIDC_ISSUER": "https://id.example/"})
    settings = Settings.from_env("0.0.0.0", 8406, {"MCP_PUBLIC_URL": "https://mcp.example/mcp"})
    assert settings.authorization_server == "https://mcp.example" and settings.allowed_hosts == ()
