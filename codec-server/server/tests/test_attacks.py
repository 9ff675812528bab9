"""The codec server under attack (issue #14): decompression bombs, keys of other namespaces,
DNS rebinding, non-JSON bodies, oversized batches, CORS grants to strangers."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from codec_server_testing import (
    VECTORS,
    Issuer,
    RunningServer,
    b64,
    peak_rss_bytes,
    post,
    run_server,
    to_json,
)
from temporalio.api.common.v1 import Payload

from payload_codec import EncryptionCodec, KeyRing

# The documented bound (codec-server/README.md, "Limits"): the server's peak RSS while it
# refuses a bomb request, default settings.
PEAK_RSS_BOUND = 256 * 1024 * 1024
PLAIN = {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'{"a":1}')}


def scoped_ring() -> dict[str, Any]:
    """agents and business with keys of their own, and a retired business key (owners)."""
    keys = json.loads(VECTORS.read_text())["keys"]
    return {
        "keys": keys,
        "active": {"agents": "k-2026-11", "business": "k-2026-05"},
        "owners": {"test-key-id": ["business"]},
        "compression": {"business": 4096},
    }


@pytest.fixture(scope="module")
def strict(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Default limits, anonymous decode (as the dev stack runs it), no Nexus callers."""
    env = {
        "CODEC_SERVER_MAX_BODY_BYTES": str(8 * 1024 * 1024),
        "CODEC_SERVER_ANONYMOUS_ROLE": "decode",
        "CODEC_SERVER_NEXUS_CALLERS": "",
    }
    with run_server(tmp_path_factory.mktemp("strict"), issuer, env, keyring=scoped_ring()) as running:
        yield running


def encrypt(server: RunningServer, namespace: str, data: bytes) -> dict[str, Any]:
    ring = KeyRing.from_document(server.keyring, source="test")
    return to_json(EncryptionCodec(ring, namespace).encode_one(Payload(data=data)))


# ---- 1. decompression bomb ----


def test_a_bomb_batch_is_refused_and_memory_stays_bounded(strict: RunningServer) -> None:
    # Whoever holds a key (a worker, an encode grant) can seal one, compression on or not:
    # 6 MB of zeros at zlib level 9, marked binary/zlib inside the ciphertext (SPEC §2).
    zeros = Payload(data=bytes(6_000_000)).SerializeToString(deterministic=True)
    inner = Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(zeros, 9))
    ring = KeyRing.from_document(strict.keyring, source="test")
    bomb = to_json(EncryptionCodec(ring, "agents", compression_threshold=0).encode_one(inner))
    assert len(bomb["data"]) < 12_000, "6 MB of zeros compress to a few KB"
    r = post(strict, "/decode", {"payloads": [bomb] * 60}, who=None)
    assert r.status_code == 413, r.status_code
    error = r.json()["error"]
    assert "in total" in error and "payloads[11]" in error and "fewer payloads" in error
    peak = peak_rss_bytes(strict.process.pid)
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak >> 20} MiB"
    line = strict.audit_lines()[-1]
    assert line["outcome"] == "too_large" and line["status"] == 413 and line["payload_count"] == 60

    # What fits the budget still decodes: one such payload is a legitimate (if large) one.
    r = post(strict, "/decode", {"payloads": [bomb]}, who=None)
    assert r.status_code == 200 and len(r.json()["payloads"][0]["data"]) == len(b64(bytes(6_000_000)))


# ---- 2. keys of other namespaces ----


def test_a_namespace_token_cannot_decrypt_another_namespaces_keys(strict: RunningServer) -> None:
    ours = encrypt(strict, "agents", b'"agents"')
    business = encrypt(strict, "business", b'"business secret"')
    retired = VECTORS_BY_KEY["test-key-id"]  # a retired business key, recorded under "owners"
    assert post(strict, "/agents/decode", {"payloads": [ours]}, who="bob", namespace=None).status_code == 200
    for theirs in (business, retired):
        r = post(strict, "/agents/decode", {"payloads": [ours, theirs]}, who="bob", namespace=None)
        assert r.status_code == 403, r.text
        assert r.json()["error"].startswith("payloads[1] is encrypted under key id")
        assert "business" in r.json()["error"]
        line = strict.audit_lines()[-1]
        assert (line["outcome"], line["reason"], line["subject"]) == ("forbidden", "key_not_in_namespace", "bob")
        assert set(line["key_ids"]) >= {"k-2026-11"} and len(line["payload_sha256"]) == 2
    # The same payload through its own namespace, by someone allowed there.
    assert post(strict, "/business/decode", {"payloads": [business]}, namespace=None).status_code == 200


def test_a_nexus_caller_reads_its_targets_results_and_nothing_else(server: RunningServer) -> None:
    """agents calls the endpoints of nexus/endpoints.json: its history holds their results, so
    its auditors decode payloads under the business key; retrieval calls nobody."""
    business = VECTORS_BY_KEY["k-2026-05"]
    assert post(server, "/agents/decode", {"payloads": [business]}, who="bob", namespace=None).status_code == 200
    token = server.issuer.mint(namespaces=["retrieval"], roles=["decode"])
    r = post(
        server,
        "/retrieval/decode",
        {"payloads": [business]},
        who=None,
        namespace=None,
        Authorization=f"Bearer {token}",
    )
    assert r.status_code == 403 and "k-2026-05" in r.json()["error"]


# ---- 3. Host check without tokens ----


def test_foreign_host_names_are_refused_while_no_token_is_needed(strict: RunningServer) -> None:
    body = {"payloads": [encrypt(strict, "agents", b'"x"')]}
    port = strict.url.rsplit(":", 1)[1]
    r = post(strict, "/decode", body, who=None, Host=f"rebound.attacker.example:{port}")
    assert r.status_code == 421 and "CODEC_SERVER_ALLOWED_HOSTS" in r.json()["error"]
    assert "x" not in json.dumps(r.json().get("payloads", []))
    assert strict.audit_lines()[-1]["outcome"] == "misdirected"
    # A token does not make a foreign name acceptable either: the server is in a no-token mode.
    assert post(strict, "/decode", body, who="bob", Host="rebound.attacker.example").status_code == 421
    for name in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert post(strict, "/decode", body, who=None, Host=name).status_code == 200, name


def test_servers_that_require_tokens_do_not_check_host(server: RunningServer) -> None:
    r = post(server, "/decode", {"payloads": [PLAIN]}, Host="codec.internal.example")
    assert r.status_code == 200


# ---- 4. Content-Type ----


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_only_json_bodies_are_accepted(server: RunningServer, content_type: str | None) -> None:
    headers = {**server.auth("alice"), "X-Namespace": "agents"}
    if content_type:
        headers["Content-Type"] = content_type
    r = server.http.post("/decode", content=json.dumps({"payloads": [PLAIN]}).encode(), headers=headers)
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    assert server.audit_lines()[-1]["outcome"] == "unsupported_media_type"


def test_json_with_parameters_is_accepted(server: RunningServer) -> None:
    r = post(server, "/decode", {"payloads": [PLAIN]}, **{"Content-Type": "Application/JSON; charset=utf-8"})
    assert r.status_code == 200


# ---- 6. compression off by default ----


def test_encode_compresses_only_where_the_key_ring_turns_it_on(strict: RunningServer) -> None:
    text = {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'"' + b"token=abc123; " * 3000 + b'"')}
    sizes = {}
    for namespace in ("agents", "business"):
        r = post(strict, f"/{namespace}/encode", {"payloads": [text]}, namespace=None)
        assert r.status_code == 200, r.text
        sizes[namespace] = len(r.json()["payloads"][0]["data"])
        back = post(strict, f"/{namespace}/decode", {"payloads": r.json()["payloads"]}, namespace=None)
        assert back.json() == {"payloads": [text]}
    assert sizes["agents"] > len(text["data"]), "agents has no compression entry: off"
    assert sizes["business"] < len(text["data"]) // 10, "business opted in"


# ---- 5. smaller ----


def test_a_batch_422_names_the_failing_payload(server: RunningServer) -> None:
    tampered = next(c["encoded"] for c in VECTORS_DOC["decode_errors"] if c["name"] == "tampered-ciphertext")
    r = post(server, "/decode", {"payloads": [PLAIN, VECTORS_BY_KEY["k-2026-11"], tampered]})
    assert r.status_code == 422
    assert r.json()["error"].startswith("payloads[2]: decryption failed for key id")


def test_too_many_payloads_are_refused_before_the_rest_is_parsed(server: RunningServer) -> None:
    # 10 001 payloads followed by bytes that are not JSON: the count decides first.
    body = b'{"payloads": [' + b",".join([b"{}"] * 10_001) + b", this is not json"
    r = post(server, "/decode", body)
    assert r.status_code == 413 and "at most 10000 payloads" in r.json()["error"]


def test_strangers_get_no_cors_grant_of_any_kind(server: RunningServer) -> None:
    r = post(server, "/decode", {"payloads": [PLAIN]}, Origin="https://evil.example")
    assert r.status_code == 200
    assert not [h for h in r.headers if h.startswith("access-control-")], dict(r.headers)
    preflight = server.http.options(
        "/decode",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 400
    assert not [h for h in preflight.headers if h.startswith("access-control-")], dict(preflight.headers)


VECTORS_DOC = json.loads(VECTORS.read_text())
VECTORS_BY_KEY = {v["key_id"]: v["encoded"] for v in reversed(VECTORS_DOC["vectors"])}
