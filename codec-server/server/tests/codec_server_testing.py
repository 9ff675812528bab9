"""Test support for the codec server: a real server process, a local JWKS, token minting."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.common.v1 import Payload

from httpkit.testing import JwksIssuer

VECTORS = Path(__file__).resolve().parents[2] / "testdata" / "vectors.json"
NEXUS_ENDPOINTS = Path(__file__).resolve().parents[3] / "nexus" / "endpoints.json"
AUDIENCE = "codec-server-test"
ISSUER = "https://issuer.test.invalid/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Issuer(JwksIssuer):
    """The shared test issuer (httpkit.testing), minting for this codec server."""

    audience: str = AUDIENCE
    issuer: str = ISSUER


@dataclass
class RunningServer:
    url: str
    audit_path: Path
    process: subprocess.Popen[bytes]
    stderr_path: Path
    tokens: dict[str, str]
    keyring: dict[str, Any]
    issuer: Issuer
    # One pooled client: a fresh httpx client per request costs ~50 ms of TLS-context setup.
    http: httpx.Client

    def audit_lines(self) -> list[dict[str, Any]]:
        """The complete entries so far. The server (shared by the module's tests) may be appending
        one for a request still in flight, so a last line without its newline is not read yet."""
        text = self.audit_path.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def server_env(base: Mapping[str, str], **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith(("CODEC_", "TEMPORAL_"))}
    env.update(overrides)
    return env


@contextmanager
def run_server(
    tmp: Path,
    issuer: Issuer,
    extra_env: Mapping[str, str] | None = None,
    keyring: dict[str, Any] | None = None,
) -> Iterator[RunningServer]:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    keyring = keyring or {"keys": vectors["keys"], "active": {"*": "k-2026-11", "business": "k-2026-05"}}
    tokens = {
        "alice": "alice-static-token-0123456789",  # agents + business, encode (and so decode)
        "bob": "bob-static-token-0123456789",  # agents, decode only
        "root": "root-static-token-0123456789",  # every namespace, encode
    }
    grants = {
        "alice": {"subject": "alice", "namespaces": ["agents", "business"], "roles": ["encode", "decode"]},
        "bob": {"subject": "bob", "namespaces": ["agents"], "roles": ["decode"]},
        "root": {"subject": "fuzzer", "namespaces": ["*"], "roles": ["encode"]},
    }
    tokens_file = tmp / "tokens.json"
    tokens_file.write_text(json.dumps({sha256_hex(tokens[w]): g for w, g in grants.items()}))
    audit = tmp / "audit.log"
    stderr_path = tmp / "server.stderr"
    port = free_port()
    settings = {
        "CODEC_KEYRING": json.dumps(keyring),
        "CODEC_SERVER_TOKENS_FILE": str(tokens_file),
        "CODEC_SERVER_JWKS_URL": issuer.url,
        "CODEC_SERVER_JWT_AUDIENCE": AUDIENCE,
        "CODEC_SERVER_JWT_ISSUER": ISSUER,
        "CODEC_SERVER_AUDIT_LOG": str(audit),
        "CODEC_SERVER_MAX_BODY_BYTES": "65536",
        "CODEC_SERVER_NAMESPACES": "agents,business",
        # As deployed: agents calls the Nexus endpoints (retrieval, business) of nexus/endpoints.json.
        "CODEC_SERVER_NEXUS_ENDPOINTS_FILE": str(NEXUS_ENDPOINTS),
        "CODEC_SERVER_NEXUS_CALLERS": "agents",
    }
    env = server_env(os.environ, **{**settings, **(extra_env or {})})
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "codec_server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"codec server exited: {stderr_path.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"codec server did not start: {stderr_path.read_text()}")
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=10) as http:
            yield RunningServer(url, audit, process, stderr_path, tokens, keyring, issuer, http)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def to_payload(obj: dict[str, Any]) -> Payload:
    return Payload(
        metadata={k: base64.b64decode(v) for k, v in obj.get("metadata", {}).items()},
        data=base64.b64decode(obj.get("data", "")),
    )


def to_json(p: Payload) -> dict[str, Any]:
    return {"metadata": {k: b64(v) for k, v in p.metadata.items()}, "data": b64(p.data)}


def post(
    server: RunningServer,
    path: str,
    body: Any,
    who: str | None = "alice",
    namespace: str | None = "agents",
    **headers: str,
) -> httpx.Response:
    h = dict(headers)
    if who:
        h.update(server.auth(who))
    if namespace:
        h["X-Namespace"] = namespace
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.http.post(path, content=content, headers={"Content-Type": "application/json", **h}, timeout=10)
