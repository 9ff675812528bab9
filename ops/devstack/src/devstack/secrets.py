"""Local-development secrets: the payload key ring, the codec server's access tokens and the
agent's principals (who may start and speak in conversations).

Made once per data directory with a cryptographically random key and token, kept in files
readable by the owner only, inside the git-ignored data directory. Clusters get theirs from
Kubernetes Secrets instead (codec-server/SPEC.md section 5).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from agent.identity import principals_document
from business.store import SEED_ORDERS
from devstack.config import NAMESPACES
from mcpserver.auth import RIGHTS as MCP_RIGHTS


def write_private(path: Path, content: str | bytes) -> None:
    """Write ``path`` readable by its owner only, from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content.encode() if isinstance(content, str) else content)


def new_key_id(prefix: str = "dev") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d')}-{secrets.token_hex(3)}"


def new_key_material() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def ensure_keyring(path: Path) -> Path:
    """A key ring with one random key, active for every namespace; kept if it exists."""
    if not path.exists():
        key_id = new_key_id()
        document = {"keys": {key_id: new_key_material()}, "active": {"*": key_id}}
        write_private(path, json.dumps(document, indent=2) + "\n")
    return path


@dataclass(frozen=True)
class CodecTokens:
    tokens_file: Path
    """Digests and rights, what the codec server reads."""
    developer_token_file: Path
    """The developer's own token (decode and encode in every namespace)."""
    auditor_token_file: Path
    """A decode-only token, for trying what an auditor sees."""


def ensure_codec_tokens(directory: Path) -> CodecTokens:
    tokens = CodecTokens(
        tokens_file=directory / "codec-tokens.json",
        developer_token_file=directory / "codec-token-developer",
        auditor_token_file=directory / "codec-token-auditor",
    )
    if not tokens.tokens_file.exists():
        entries = {}
        for path, subject, roles in (
            (tokens.developer_token_file, "local-developer", ["decode", "encode"]),
            (tokens.auditor_token_file, "local-auditor", ["decode"]),
        ):
            token = secrets.token_urlsafe(32)
            write_private(path, token + "\n")
            digest = hashlib.sha256(token.encode()).hexdigest()
            entries[digest] = {"subject": subject, "namespaces": list(NAMESPACES), "roles": roles}
        write_private(tokens.tokens_file, json.dumps(entries, indent=2) + "\n")
    return tokens


@dataclass(frozen=True)
class AgentPrincipals:
    principals_file: Path
    """Digests of every principal's token (AGENT_PRINCIPALS_FILE)."""
    operator_token_file: Path
    """A support lead's token: may act for any customer and decide approvals (the shell's default)."""
    token_dir: Path
    """``agent-token-<customer id>``: each seeded customer's own token."""

    def customer_token_file(self, customer_id: str) -> Path:
        return self.token_dir / f"agent-token-{customer_id}"


def ensure_agent_principals(directory: Path) -> AgentPrincipals:
    """A local support lead and one principal per seeded customer, each with a random token."""
    found = AgentPrincipals(
        principals_file=directory / "agent-principals.json",
        operator_token_file=directory / "agent-token-operator",
        token_dir=directory,
    )
    if not found.principals_file.exists():
        entries: list[tuple[str, str, str | None]] = []
        customers = sorted({order.customer_id for order in SEED_ORDERS})
        for path, subject, customer_id in [
            (found.operator_token_file, "local-support-lead", None),
            *((found.customer_token_file(c), c, c) for c in customers),
        ]:
            token = secrets.token_urlsafe(32)
            write_private(path, token + "\n")
            entries.append((subject, token, customer_id))
        write_private(found.principals_file, json.dumps(principals_document(entries), indent=2) + "\n")
    return found


@dataclass(frozen=True)
class McpTokens:
    tokens_file: Path
    """Digests and rights of every MCP token (MCP_TOKENS_FILE)."""
    operator_token_file: Path
    """Every right, for any customer (a support lead's MCP client)."""
    customer_token_file: Path
    """Every right, acting for the seeded customer cust-ada only."""
    search_token_file: Path
    """knowledge:read only: what a documentation assistant needs."""


def ensure_mcp_tokens(directory: Path) -> McpTokens:
    """The MCP server's local tokens, each random, kept by digest (mcpserver.auth)."""
    found = McpTokens(
        tokens_file=directory / "mcp-tokens.json",
        operator_token_file=directory / "mcp-token-operator",
        customer_token_file=directory / "mcp-token-cust-ada",
        search_token_file=directory / "mcp-token-search",
    )
    if not found.tokens_file.exists():
        every = list(MCP_RIGHTS)
        entries: dict[str, dict[str, object]] = {}
        for path, subject, rights, customer_id in [
            (found.operator_token_file, "local-mcp-operator", every, None),
            (found.customer_token_file, "cust-ada", every, "cust-ada"),
            (found.search_token_file, "local-mcp-search", ["knowledge:read"], None),
        ]:
            token = secrets.token_urlsafe(32)
            write_private(path, token + "\n")
            entry: dict[str, object] = {"subject": subject, "rights": rights}
            if customer_id:
                entry["customer_id"] = customer_id
            entries[hashlib.sha256(token.encode()).hexdigest()] = entry
        write_private(found.tokens_file, json.dumps(entries, indent=2) + "\n")
    return found
