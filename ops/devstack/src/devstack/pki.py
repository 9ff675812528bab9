"""The cluster mode's credentials: a private CA with short-lived node and client certificates for
mTLS, and a JWT signing key whose public half (a JWKS file) the Temporal server trusts.

Everything is made by the stack in its own data directory (git-ignored), private keys readable by
the owner only, and re-issued by ``make up`` when less than half of its lifetime is left, so an
expired credential is never the reason a stack does not start. Nothing here is ever committed;
clusters get theirs from their own CA and identity provider (ops/runbooks/cluster-credentials.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devstack.secrets import write_private

# Short on purpose: a leaked local certificate or token is worthless within days. The CA lives
# longer so that re-issuing a leaf does not invalidate the other leaves signed by it.
CA_LIFETIME = dt.timedelta(days=30)
LEAF_LIFETIME = dt.timedelta(days=3)
TOKEN_LIFETIME = dt.timedelta(days=3)

# The name clients verify the frontend certificate against (TEMPORAL_TLS_SERVER_NAME); the
# certificate also carries the loopback address, which cluster nodes dial each other by.
SERVER_NAME = "temporal.devstack.local"
ISSUER = "devstack"
# What the server's default claim mapper reads: "<namespace>:<role>", "temporal-system" for the cluster.
PERMISSIONS_CLAIM = "permissions"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fresh(path: Path, lifetime: dt.timedelta) -> bool:
    """True if the certificate at ``path`` exists and has more than half its lifetime left."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - _now() > lifetime / 2


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class ClusterPki:
    """Paths of the cluster's TLS material (PEM files)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def node_cert(self) -> Path:
        """Server nodes: the frontend's serving certificate and each node's internode identity."""
        return self.directory / "node.pem"

    @property
    def node_key(self) -> Path:
        return self.directory / "node-key.pem"

    @property
    def client_cert(self) -> Path:
        """Workers and CLIs: the transport identity; who may do what is in their JWT."""
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client-key.pem"


def ensure_pki(directory: Path) -> ClusterPki:
    """A CA and a node and client certificate signed by it, each re-issued when half-expired
    (a new CA re-issues both leaves)."""
    pki = ClusterPki(directory)
    renewed_ca = not _fresh(pki.ca_cert, CA_LIFETIME) or not pki.ca_key.exists()
    if renewed_ca:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devstack cluster CA")])
        cert = (
            _builder(name, name, key.public_key(), CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        write_private(pki.ca_key, _pem_key(key))
        pki.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    # Nodes both serve and dial each other (internode mTLS), so their certificate is for both.
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    leaves = (
        (pki.node_cert, pki.node_key, "temporal-node", both),
        (pki.client_cert, pki.client_key, "devstack-client", [ExtendedKeyUsageOID.CLIENT_AUTH]),
    )
    for cert_path, key_path, common_name, usages in leaves:
        if renewed_ca or not _fresh(cert_path, LEAF_LIFETIME) or not key_path.exists():
            _issue_leaf(ca_cert, ca_key, cert_path, key_path, common_name, usages)
    return pki


def _builder(subject: x509.Name, issuer: x509.Name, public_key, lifetime: dt.timedelta) -> x509.CertificateBuilder:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # A minute of slack for clocks that disagree (cluster nodes, clients).
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + lifetime)
    )


def _issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cert_path: Path,
    key_path: Path,
    common_name: str,
    usages: list[x509.ObjectIdentifier],
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    names = [x509.DNSName(SERVER_NAME), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class TokenIssuer:
    """The stack's identity provider in miniature: a signing key, its JWKS, and the tokens."""

    directory: Path

    @property
    def signing_key(self) -> Path:
        return self.directory / "jwt-signing-key.pem"

    @property
    def jwks(self) -> Path:
        """The public key set the server's JWT key provider reads (a file:// URI)."""
        return self.directory / "jwks.json"

    def token_file(self, name: str) -> Path:
        return self.directory / "tokens" / f"{name}.jwt"

    def token(self, name: str, permissions: list[str]) -> str:
        """The token ``name`` (minted, or re-minted when half-expired) granting ``permissions``."""
        path = self.token_file(name)
        key = _load_rsa(self.signing_key)
        try:
            current = path.read_text().strip()
            claims = jwt.decode(current, options={"verify_signature": False})
            # Signed by the current key (a new key revokes every older token), same grants, and
            # more than half its life left.
            fresh = (
                jwt.get_unverified_header(current).get("kid") == _key_id(key.public_key())
                and claims.get(PERMISSIONS_CLAIM) == permissions
                and claims["exp"] - _now().timestamp() > TOKEN_LIFETIME.total_seconds() / 2
            )
        except (OSError, jwt.PyJWTError, KeyError):
            fresh = False
        if fresh:
            return current
        now = _now()
        token = jwt.encode(
            {
                "sub": name,
                "iss": ISSUER,
                "iat": int(now.timestamp()),
                "exp": int((now + TOKEN_LIFETIME).timestamp()),
                PERMISSIONS_CLAIM: permissions,
            },
            key,
            algorithm="RS256",
            headers={"kid": _key_id(key.public_key())},
        )
        write_private(path, token.encode() + b"\n")
        return token


def _load_rsa(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key; remove it and run `make up` to make a new one")
    return key


def _key_id(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ensure_token_issuer(directory: Path) -> TokenIssuer:
    """An RSA signing key (RS256: what every JWT library and Temporal's key provider accept) and
    the JWKS of its public key; kept if they exist, so running workers' tokens stay valid."""
    issuer = TokenIssuer(directory)
    new_key = not issuer.signing_key.exists()
    if new_key:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_private(issuer.signing_key, _pem_key(key))
    if new_key or not issuer.jwks.exists():
        key = _load_rsa(issuer.signing_key)
        numbers = key.public_key().public_numbers()
        document = {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": _key_id(key.public_key()),
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                }
            ]
        }
        issuer.jwks.write_text(json.dumps(document, indent=2) + "\n")
    return issuer
