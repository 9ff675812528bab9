"""Test support for :mod:`httpkit.jwks`: an OIDC issuer in miniature, for the tests of every
package that verifies tokens (codec server, agent identities).

Real keys (``cryptography``), a real JWKS served over HTTP on loopback, and tokens minted the
way an identity provider mints them, so tests exercise the same code path as production.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class JwksIssuer:
    """RSA signing keys and a JWKS endpoint on loopback (``url`` once :meth:`serve` runs).
    ``stranger`` is a key the JWKS does not hold: tokens it signs must be refused."""

    audience: str = "test-audience"
    issuer: str = "https://issuer.test.invalid/"
    subject: str = "auditor@example.com"
    key: rsa.RSAPrivateKey = field(default_factory=_rsa_key)
    stranger: rsa.RSAPrivateKey = field(default_factory=_rsa_key)
    kid: str = "test-signing-key"
    url: str = ""

    def jwks(self) -> bytes:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return json.dumps({"keys": [jwk]}).encode()

    def mint(
        self,
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        expires_in: int = 300,
        audience: str | None = None,
        issuer: str | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": self.subject,
            "aud": audience or self.audience,
            "iss": issuer or self.issuer,
            "iat": now,
            "exp": now + expires_in,
        }
        body.update(claims)
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def mint_unsigned(self, **claims: Any) -> str:
        """An ``alg: none`` token with otherwise valid claims: what a forger sends."""
        now = int(time.time())
        body = {"sub": self.subject, "aud": self.audience, "iss": self.issuer, "iat": now, "exp": now + 300}
        body.update(claims)
        # PyJWT takes "" as "no key" for alg none (None, which it also takes, is not in its types).
        return jwt.encode(body, "", algorithm="none", headers={"kid": self.kid})

    @contextmanager
    def serve(self) -> Iterator[JwksIssuer]:
        document = self.jwks()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
        try:
            yield self
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)
