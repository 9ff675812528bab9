"""The codec server over real HTTP: protocol, auth, CORS, limits, errors, audit, metrics."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import pytest
from codec_server_testing import RunningServer, b64, post, to_json, to_payload

from payload_codec import EncryptionCodec, KeyRing

SECRET_TEXT = b'{"card":"4111-1111-1111-1111","note":"plaintext-marker-7f3a"}'
PLAIN = {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(SECRET_TEXT)}
VECTORS = json.loads(
    (__import__("pathlib").Path(__file__).resolve().parents[2] / "testdata" / "vectors.json").read_text()
)


def local_ring(server: RunningServer) -> KeyRing:
    return KeyRing.from_document(server.keyring, source="test")


def test_encode_then_decode_round_trip_agrees_with_the_library(server: RunningServer) -> None:
    r = post(server, "/encode", {"payloads": [PLAIN, PLAIN]})
    assert r.status_code == 200, r.text
    encoded = r.json()["payloads"]
    assert all(base64.b64decode(p["metadata"]["encoding"]) == b"binary/encrypted" for p in encoded)
    assert base64.b64decode(encoded[0]["metadata"]["encryption-key-id"]) == b"k-2026-11"
    assert encoded[0]["data"] != encoded[1]["data"], "fresh nonce per payload"
    # The library, with the same ring, reads what the server wrote...
    codec = EncryptionCodec(local_ring(server), "agents")
    assert [to_json(p) for p in codec.decode_sync([to_payload(p) for p in encoded])] == [PLAIN, PLAIN]
    # ... and the server reads what the library wrote.
    mine = [to_json(p) for p in codec.encode_sync([to_payload(PLAIN)])]
    r = post(server, "/decode", {"payloads": mine})
    assert r.status_code == 200 and r.json() == {"payloads": [PLAIN]}


def test_every_shared_vector_decodes_over_http(server: RunningServer) -> None:
    vectors = VECTORS["vectors"]
    # Three requests: all of them together are over this server's 64 KiB body limit.
    for half in (vectors[::3], vectors[1::3], vectors[2::3]):
        r = post(server, "/decode", {"payloads": [v["encoded"] for v in half]})
        assert r.status_code == 200, r.text
        for vector, got in zip(half, r.json()["payloads"], strict=True):
            assert to_payload(got) == to_payload(vector["plain"]), vector["name"]


def test_namespace_forms_and_ui_query_string(server: RunningServer) -> None:
    # Path form (CLI: --codec-endpoint http://host/{namespace}), header form (UI), both agreeing.
    r = post(server, "/business/encode", {"payloads": [PLAIN]}, namespace=None)
    assert r.status_code == 200
    assert base64.b64decode(r.json()["payloads"][0]["metadata"]["encryption-key-id"]) == b"k-2026-05"
    body = {"payloads": r.json()["payloads"]}
    assert post(server, "/decode", body, namespace="business").json() == {"payloads": [PLAIN]}
    assert post(server, "/business/decode", body, namespace="business").status_code == 200
    assert post(server, "/decode?preserveStorageRefs=true", body, namespace="business").json() == {"payloads": [PLAIN]}
    assert post(server, "/business/decode?preserveStorageRefs=true&x=1", body, namespace=None).status_code == 200
    # protojson omits an empty repeated field.
    assert post(server, "/decode", {}).json() == {"payloads": []}


@pytest.mark.parametrize(
    "path, namespace, fragment",
    [
        ("/decode", None, "no namespace"),
        ("/agents/decode", "business", "disagree"),
        ("/decode", "bad namespace!", "not a valid namespace"),
    ],
)
def test_namespace_errors(server: RunningServer, path: str, namespace: str | None, fragment: str) -> None:
    r = post(server, path, {"payloads": [PLAIN]}, namespace=namespace)
    assert r.status_code == 400 and fragment in r.json()["error"]


@pytest.mark.parametrize(
    "who, headers, fragment",
    [
        (None, {}, "Authorization: Bearer"),
        (None, {"Authorization": "Basic YWxpY2U6cHc="}, "Bearer <token>"),
        (None, {"Authorization": "Bearer not-a-known-token"}, "not valid"),
        (None, {"Authorization": "Bearer"}, "Bearer <token>"),
    ],
)
def test_unauthenticated(server: RunningServer, who: str | None, headers: dict[str, str], fragment: str) -> None:
    r = post(server, "/decode", {"payloads": [PLAIN]}, who=who, **headers)
    assert r.status_code == 401
    assert fragment in r.json()["error"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_forbidden(server: RunningServer) -> None:
    r = post(server, "/decode", {"payloads": [PLAIN]}, who="bob", namespace="business")
    assert r.status_code == 403 and "'business'" in r.json()["error"]
    r = post(server, "/encode", {"payloads": [PLAIN]}, who="bob", namespace="agents")
    assert r.status_code == 403 and "encode role" in r.json()["error"]
    assert post(server, "/decode", {"payloads": [PLAIN]}, who="bob", namespace="agents").status_code == 200


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"payloads": {}}', "must be a list"),
        (b'{"payloads": [7]}', "payloads[0] must be an object"),
        (b'{"payloads": [{"data": "%%%"}]}', "payloads[0].data is not valid base64"),
        (b'{"payloads": [{"metadata": {"encoding": 1}}]}', "metadata value must be a base64 string"),
        (b'{"payloads": [{"bogus": 1}]}', "unknown field"),
        (b'{"payloads": [], "extra": 1}', "unknown field"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[" * 60000, "not JSON"),
    ],
)
def test_bad_bodies_are_400(server: RunningServer, body: bytes, fragment: str) -> None:
    r = post(server, "/decode", body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]


def test_codec_errors_are_422_and_name_the_key_id(server: RunningServer) -> None:
    for case in VECTORS["decode_errors"]:
        if case["name"] == "decompression-bomb":
            continue  # over this server's 64 KiB body limit; covered by the library tests
        r = post(server, "/decode", {"payloads": [case["encoded"]]})
        assert r.status_code == 422, (case["name"], r.text)
        assert case["error_contains"] in r.json()["error"]


def test_body_limit(server: RunningServer) -> None:
    big = {"payloads": [{"data": b64(b"x" * 70_000)}]}
    assert post(server, "/decode", big).status_code == 413

    # Over the limit by Content-Length alone: answered before any body byte is sent.
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=5) as s:
        s.sendall(
            b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Namespace: agents\r\n"
            + f"Authorization: Bearer {server.tokens['alice']}\r\n".encode()
            + b"Content-Length: 1000000000\r\n\r\n"
        )
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]

    # Chunked (no Content-Length): enforced while reading.
    def chunks() -> Any:
        yield b'{"payloads": [{"data": "'
        for _ in range(40):
            yield b"A" * 4096
        yield b'"}]}'

    r = server.http.post(
        "/decode",
        content=chunks(),
        headers={**server.auth("alice"), "X-Namespace": "agents", "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 413 and "larger than 65536 bytes" in r.json()["error"]


def test_cors(server: RunningServer) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    ok = server.http.options("/decode", headers={"Origin": "http://localhost:8233", **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert ok.headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in ok.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    assert "POST" in ok.headers["access-control-allow-methods"]

    evil = server.http.options("/decode", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in evil.headers
    assert evil.status_code >= 400

    r = post(server, "/decode?preserveStorageRefs=true", {"payloads": [PLAIN]}, Origin="http://127.0.0.1:8233")
    assert r.headers["access-control-allow-origin"] == "http://127.0.0.1:8233"
    r = post(server, "/decode", {"payloads": [PLAIN]}, Origin="https://evil.example")
    assert "access-control-allow-origin" not in r.headers
    # Refusals carry CORS headers too, so the UI can show why.
    r = post(server, "/decode", {"payloads": [PLAIN]}, who=None, Origin="http://localhost:8233")
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "http://localhost:8233"


def test_jwt(server: RunningServer) -> None:
    iss = server.issuer
    good = iss.mint(namespaces=["agents"], roles=["decode"])
    assert post(server, "/decode", {"payloads": [PLAIN]}, who=None, Authorization=f"Bearer {good}").status_code == 200
    r = post(server, "/encode", {"payloads": [PLAIN]}, who=None, Authorization=f"Bearer {good}")
    assert r.status_code == 403 and "encode role" in r.json()["error"]
    r = post(
        server,
        "/decode",
        {"payloads": [PLAIN]},
        who=None,
        namespace="business",
        Authorization=f"Bearer {good}",
    )
    assert r.status_code == 403

    # Temporal-style permissions claim: "<namespace>:<permission>".
    perms = iss.mint(permissions=["business:write", "agents:read"])
    assert (
        post(
            server,
            "/encode",
            {"payloads": [PLAIN]},
            who=None,
            namespace="business",
            Authorization=f"Bearer {perms}",
        ).status_code
        == 200
    )
    assert (
        post(
            server,
            "/encode",
            {"payloads": [PLAIN]},
            who=None,
            namespace="agents",
            Authorization=f"Bearer {perms}",
        ).status_code
        == 403
    )
    system = iss.mint(permissions=["temporal-system:admin"])
    assert (
        post(
            server,
            "/encode",
            {"payloads": [PLAIN]},
            who=None,
            namespace="anything",
            Authorization=f"Bearer {system}",
        ).status_code
        == 200
    )

    refusals = {
        "expired": iss.mint(namespaces=["agents"], roles=["decode"], expires_in=-3600),
        "audience": iss.mint(namespaces=["agents"], roles=["decode"], audience="some-other-service"),
        "issuer": iss.mint(namespaces=["agents"], roles=["decode"], issuer="https://elsewhere.invalid/"),
        "unknown key": iss.mint(namespaces=["agents"], roles=["decode"], kid="rotated-away"),
        "signature": iss.mint(namespaces=["agents"], roles=["decode"], key=iss.stranger),
        "hs256": __import__("jwt").encode(
            {"sub": "x", "aud": "codec-server-test", "exp": 2**31},
            "an-hmac-secret-of-at-least-32-bytes!",
            algorithm="HS256",
        ),
    }
    for name, token in refusals.items():
        r = post(server, "/decode", {"payloads": [PLAIN]}, who=None, Authorization=f"Bearer {token}")
        assert r.status_code == 401, (name, r.text)
    assert (
        "expired"
        in post(server, "/decode", {}, who=None, Authorization=f"Bearer {refusals['expired']}").json()["error"]
    )
    assert (
        "audience"
        in post(server, "/decode", {}, who=None, Authorization=f"Bearer {refusals['audience']}").json()["error"]
    )


def test_health_openapi_and_json_errors(server: RunningServer) -> None:
    assert server.http.get("/healthz").json()["status"] == "ok"
    doc = server.http.get("/openapi.json").json()
    assert {"/decode", "/encode", "/{namespace}/decode", "/{namespace}/encode"} <= doc["paths"].keys()
    r = server.http.get("/decode")
    assert r.status_code == 405 and "error" in r.json()
    r = server.http.post("/nope/nope/decode")
    assert r.status_code == 404 and "error" in r.json()


def test_metrics(server: RunningServer) -> None:
    post(server, "/decode", {"payloads": [PLAIN]})
    post(server, "/decode", {"payloads": [PLAIN]}, namespace="unlisted-namespace", who="root")
    post(server, "/decode", {"payloads": [PLAIN]}, who=None)
    text = server.http.get("/metrics").text
    assert 'codec_server_requests_total{namespace="agents",operation="decode",outcome="ok"}' in text
    assert 'codec_server_requests_total{namespace="other",operation="decode",outcome="ok"}' in text
    assert "unlisted-namespace" not in text
    assert 'codec_server_auth_failures_total{reason="missing_token"}' in text
    assert 'codec_server_request_duration_seconds_bucket{le="0.005",operation="decode"}' in text
    assert 'codec_server_payloads_total{namespace="agents",operation="decode"}' in text
    assert 'codec_server_payload_bytes_total{direction="in",namespace="agents",operation="decode"}' in text


def test_audit_log_records_who_and_what_but_no_secrets(server: RunningServer) -> None:
    marker_body = {"payloads": [PLAIN]}
    enc = post(server, "/encode", marker_body).json()["payloads"]
    post(server, "/decode", {"payloads": enc})
    post(server, "/decode", {"payloads": enc}, who="bob", namespace="business")
    post(server, "/decode", {"payloads": enc}, who=None)
    post(server, "/decode", {"payloads": [VECTORS["decode_errors"][0]["encoded"]]})
    jwt_token = server.issuer.mint(namespaces=["agents"], roles=["decode"])
    post(server, "/decode", {"payloads": enc}, who=None, Authorization=f"Bearer {jwt_token}")

    lines = server.audit_lines()
    required = {
        "ts",
        "subject",
        "auth_method",
        "namespace",
        "operation",
        "payload_count",
        "payload_sha256",
        "key_ids",
        "outcome",
        "status",
        "latency_ms",
        "client",
    }
    for line in lines:
        assert required <= line.keys()
    ok_decode = [x for x in lines if x["operation"] == "decode" and x["outcome"] == "ok" and x["subject"] == "alice"][
        -1
    ]
    assert ok_decode["auth_method"] == "static" and ok_decode["namespace"] == "agents"
    assert ok_decode["payload_count"] == 1 and ok_decode["key_ids"] == ["k-2026-11"]
    digest = __import__("hashlib").sha256(base64.b64decode(enc[0]["data"])).hexdigest()[:16]
    assert ok_decode["payload_sha256"] == [digest]
    encode_line = [x for x in lines if x["operation"] == "encode" and x["outcome"] == "ok"][-1]
    assert encode_line["payload_sha256"] == [digest], "encode logs the digest of what it produced"
    denied = [x for x in lines if x["subject"] == "bob" and x["outcome"] == "forbidden"][-1]
    assert denied["status"] == 403 and denied["namespace"] == "business"
    anonymous = [x for x in lines if x["outcome"] == "unauthenticated"][-1]
    assert anonymous["subject"] is None and anonymous["reason"] == "missing_token"
    via_jwt = [x for x in lines if x["auth_method"] == "jwt" and x["outcome"] == "ok"][-1]
    assert via_jwt["subject"] == "auditor@example.com" and via_jwt["payload_sha256"] == [digest]
    unknown = [x for x in lines if x["outcome"] == "codec_error"][-1]
    assert unknown["status"] == 422 and "k-retired" in unknown["key_ids"]

    raw = server.audit_path.read_text()
    assert "plaintext-marker-7f3a" not in raw and b64(SECRET_TEXT) not in raw and b64(SECRET_TEXT)[:24] not in raw
    for token in [*server.tokens.values(), jwt_token, jwt_token.rsplit(".", 1)[-1]]:
        assert token not in raw
    for material in server.keyring["keys"].values():
        assert material not in raw and material.rstrip("=") not in raw
        assert base64.b64decode(material).hex() not in raw
    stderr = server.stderr_path.read_text()
    for material in server.keyring["keys"].values():
        assert material not in stderr
    for token in server.tokens.values():
        assert token not in stderr
