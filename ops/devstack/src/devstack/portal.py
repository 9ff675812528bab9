"""The approval portal as a process of the dev stack (services/approval-portal).

It signs in the stack's own principals (the support lead's token, ``agent-token-operator``, may
decide), decrypts with the stack's key ring, keeps its session secret in the data directory
(made once, mode 0600) and audits to ``logs/portal-audit.jsonl``.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack.config import StackConfig
from devstack.processes import ProcessSpec, http_ok
from devstack.secrets import write_private

NAME = "approval-portal"


def url(config: StackConfig) -> str:
    return f"http://{config.host}:{config.ports['approval_portal']}"


def session_secret(config: StackConfig) -> Path:
    path = config.data_dir / "portal-session-secret"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(48) + "\n")
    return path


def spec(config: StackConfig, temporal_env: Mapping[str, str | None], principals_file: Path) -> ProcessSpec:
    """``temporal_env``: the server, credentials and key ring a worker of ``agents`` gets."""
    port = config.ports["approval_portal"]
    return ProcessSpec(
        name=NAME,
        argv=[sys.executable, "-m", "approval_portal", "--host", config.host, "--port", str(port)],
        ports=[port],
        ready=http_ok(f"{url(config)}/readyz"),
        env={
            **temporal_env,
            "AGENT_PRINCIPALS_FILE": str(principals_file),
            "PORTAL_SESSION_SECRET_FILE": str(session_secret(config)),
            "PORTAL_AUDIT_LOG": str(config.log_dir / "portal-audit.jsonl"),
        },
    )
