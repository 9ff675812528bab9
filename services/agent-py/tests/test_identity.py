"""Principals: tokens verified against the principals file; who may act for whom."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.identity import IdentityError, Principal, Principals, principal_from_env, principals_document


@pytest.fixture
def principals_file(tmp_path: Path) -> Path:
    path = tmp_path / "principals.json"
    document = principals_document([("lead-ana", "lead-token", None), ("ada@example.com", "ada-token", "cust-ada")])
    path.write_text(json.dumps(document))
    return path


def test_tokens_are_stored_as_digests_and_verified(principals_file: Path) -> None:
    assert "ada-token" not in principals_file.read_text()
    principals = Principals.load(principals_file)
    assert principals.verify("ada-token\n") == Principal("ada@example.com", "cust-ada")
    assert principals.verify("lead-token") == Principal("lead-ana", operator=True)
    with pytest.raises(IdentityError, match="not one of the principals"):
        principals.verify("guess")


@pytest.mark.parametrize(
    ("principal", "asked", "expected"),
    [
        (Principal("ada@example.com", "cust-ada"), None, ("cust-ada", "customer ada@example.com")),
        (Principal("ada@example.com", "cust-ada"), "cust-ada", ("cust-ada", "customer ada@example.com")),
        (Principal("lead-ana", operator=True), "cust-bob", ("cust-bob", "operator lead-ana acting for cust-bob")),
    ],
)
def test_who_a_conversation_acts_for(principal: Principal, asked: str | None, expected: tuple[str, str]) -> None:
    assert principal.acting_for(asked) == expected


@pytest.mark.parametrize(
    ("principal", "asked", "refusal"),
    [
        (Principal("ada@example.com", "cust-ada"), "cust-bob", "may act only for customer cust-ada, not cust-bob"),
        (Principal("lead-ana", operator=True), None, "must name the customer to act for"),
    ],
)
def test_refused_identities(principal: Principal, asked: str | None, refusal: str) -> None:
    with pytest.raises(IdentityError, match=refusal):
        principal.acting_for(asked)


def test_from_the_environment(principals_file: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("ada-token\n")
    env = {"AGENT_PRINCIPALS_FILE": str(principals_file), "AGENT_TOKEN_FILE": str(token_file)}
    assert principal_from_env(env).customer_id == "cust-ada"
    with pytest.raises(IdentityError, match="no authenticated identity: set AGENT_PRINCIPALS_FILE"):
        principal_from_env({})
    with pytest.raises(IdentityError, match="no authenticated identity: set AGENT_TOKEN_FILE"):
        principal_from_env({"AGENT_PRINCIPALS_FILE": str(principals_file)})
    with pytest.raises(IdentityError, match="does not exist"):
        principal_from_env({"AGENT_PRINCIPALS_FILE": str(tmp_path / "none.json"), "AGENT_TOKEN": "x"})


def test_an_entry_must_be_an_operator_or_one_customers(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {"principals": [{"subject": "both", "token_sha256": "00", "operator": True, "customer_id": "cust-ada"}]}
        )
    )
    with pytest.raises(IdentityError, match="must be either an operator or one customer's"):
        Principals.load(path)
