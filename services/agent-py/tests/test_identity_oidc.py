"""OIDC identities: a bearer JWT verified against a real JWKS served over HTTP (keys made with
``cryptography``), mapped onto the same Principal a principals-file token yields."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.identity import IdentityError, Principal, principal_from_env, principals_document
from httpkit.testing import JwksIssuer

AUDIENCE = "agent-test"
ISSUER = "https://login.example.test/realms/support"


@pytest.fixture(scope="module")
def issuer() -> Iterator[JwksIssuer]:
    with JwksIssuer(audience=AUDIENCE, issuer=ISSUER, subject="ada@example.com").serve() as running:
        yield running


@pytest.fixture
def env(issuer: JwksIssuer) -> dict[str, str]:
    return {"AGENT_OIDC_ISSUER": ISSUER, "AGENT_OIDC_AUDIENCE": AUDIENCE, "AGENT_OIDC_JWKS_URL": issuer.url}


def principal(env: dict[str, str], token: str) -> Principal:
    return principal_from_env({**env, "AGENT_TOKEN": token})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(issuer: JwksIssuer) -> str:
    """The classic algorithm confusion: an HMAC token keyed with the issuer's *public* key,
    which anyone can fetch from the JWKS."""
    public = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    body = _b64(
        json.dumps({"sub": "mallory", "aud": AUDIENCE, "iss": ISSUER, "exp": 2**31, "customer_id": "cust-ada"}).encode()
    )
    signature = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def test_a_customers_token_acts_for_its_customer(env: dict[str, str], issuer: JwksIssuer) -> None:
    found = principal(env, issuer.mint(customer_id="cust-ada"))
    assert found == Principal("ada@example.com", "cust-ada", issuer=ISSUER)
    assert found.acting_for(None) == ("cust-ada", f"customer ada@example.com (OIDC {ISSUER})")


def test_an_operators_token_acts_for_the_customer_it_names(env: dict[str, str], issuer: JwksIssuer) -> None:
    token = issuer.mint(sub="lead-ana", roles=["agent-operator"], customer_id="cust-ana")
    found = principal(env, token)
    assert found.operator and found.customer_id is None
    assert found.acting_for("cust-bob") == ("cust-bob", f"operator lead-ana acting for cust-bob (OIDC {ISSUER})")


def test_claim_names_are_settings(env: dict[str, str], issuer: JwksIssuer) -> None:
    mapped = {
        **env,
        "AGENT_OIDC_CUSTOMER_CLAIM": "https://shop.example/customer",
        "AGENT_OIDC_ROLES_CLAIM": "realm_access.roles",
        "AGENT_OIDC_OPERATOR_ROLE": "support-lead",
    }
    assert principal(mapped, issuer.mint(**{"https://shop.example/customer": "cust-ada"})).customer_id == "cust-ada"
    assert principal(mapped, issuer.mint(realm_access={"roles": ["support-lead"]})).operator


@pytest.mark.parametrize(
    ("case", "refusal"),
    [
        ("bad signature", "the bearer token signature does not verify"),
        ("wrong issuer", "the bearer token comes from an untrusted issuer"),
        ("wrong audience", "the bearer token was not issued for this agent deployment (audience)"),
        ("expired", "the bearer token has expired"),
        ("unknown kid", "the bearer token is signed with an unknown key"),
        ("alg none", "the bearer token uses a signing algorithm this server does not accept"),
        ("HS256 keyed with the public key", "the bearer token uses a signing algorithm this server does not accept"),
        ("no customer claim", "the token names no customer (claim 'customer_id') and has no 'agent-operator' role"),
        ("oversized customer claim", "the token's 'customer_id' claim is longer than a customer id may be"),
    ],
)
def test_refused_tokens_get_one_sentence(env: dict[str, str], issuer: JwksIssuer, case: str, refusal: str) -> None:
    token = {
        "bad signature": lambda: issuer.mint(key=issuer.stranger, customer_id="cust-ada"),
        "wrong issuer": lambda: issuer.mint(issuer="https://elsewhere.example.test/", customer_id="cust-ada"),
        "wrong audience": lambda: issuer.mint(audience="another-app", customer_id="cust-ada"),
        "expired": lambda: issuer.mint(expires_in=-3600, customer_id="cust-ada"),
        "unknown kid": lambda: issuer.mint(kid="rotated-away", customer_id="cust-ada"),
        "alg none": lambda: issuer.mint_unsigned(customer_id="cust-ada"),
        "HS256 keyed with the public key": lambda: hs256_with_public_key(issuer),
        "no customer claim": lambda: issuer.mint(),
        "oversized customer claim": lambda: issuer.mint(customer_id="cust-" + "x" * 200),
    }[case]()
    with pytest.raises(IdentityError) as refused:
        principal(env, token)
    message = str(refused.value)
    assert message.startswith(refusal) and "\n" not in message and token not in message


def test_a_customers_token_cannot_act_for_another_customer(env: dict[str, str], issuer: JwksIssuer) -> None:
    found = principal(env, issuer.mint(customer_id="cust-ada"))
    with pytest.raises(IdentityError, match="^ada@example.com may act only for customer cust-ada, not cust-bob$"):
        found.acting_for("cust-bob")


def test_both_methods_side_by_side(env: dict[str, str], issuer: JwksIssuer, tmp_path: Path) -> None:
    path = tmp_path / "principals.json"
    path.write_text(json.dumps(principals_document([("lead-ana", "lead-token", None)])))
    both = {**env, "AGENT_PRINCIPALS_FILE": str(path)}
    assert principal(both, "lead-token").operator
    assert principal(both, issuer.mint(customer_id="cust-ada")).customer_id == "cust-ada"
    with pytest.raises(IdentityError, match="accepts only its identity provider's"):
        principal(env, "lead-token")


@pytest.mark.parametrize(
    ("settings", "alone", "problem"),
    [
        ({"AGENT_OIDC_ISSUER": ISSUER}, True, "set AGENT_OIDC_AUDIENCE and AGENT_OIDC_JWKS_URL too"),
        ({"AGENT_OIDC_AUDIENCE": AUDIENCE}, True, "set AGENT_OIDC_ISSUER and AGENT_OIDC_JWKS_URL too"),
        ({"AGENT_OIDC_ALGORITHMS": "RS256,HS256"}, False, "AGENT_OIDC_ALGORITHMS has HS256; allowed (asymmetric"),
        ({"AGENT_OIDC_JWKS_URL": "file:///etc/jwks.json"}, False, "AGENT_OIDC_JWKS_URL must be an http(s) URL"),
    ],
)
def test_misconfiguration_is_one_sentence(
    env: dict[str, str], settings: dict[str, str], alone: bool, problem: str
) -> None:
    """``alone``: the setting is all there is; otherwise it changes one of a complete configuration."""
    config = settings if alone else {**env, **settings}
    with pytest.raises(IdentityError) as refused:
        principal_from_env({**config, "AGENT_TOKEN": "x.y.z"})
    assert problem in str(refused.value)


def test_an_unreachable_issuer_is_one_sentence(env: dict[str, str], issuer: JwksIssuer) -> None:
    gone = {**env, "AGENT_OIDC_JWKS_URL": "http://127.0.0.1:9/jwks.json"}
    with pytest.raises(IdentityError, match="^the token issuer's signing keys cannot be fetched; try again later$"):
        principal(gone, issuer.mint(customer_id="cust-ada"))
