"""The Temporal Web UI of cluster mode: ui-server (its module embeds the built UI) behind
``make temporal-ui``, talking to the cluster through the front door over mTLS, with a read-only
JWT of its own, and the stack's codec server as its codec endpoint.

The dev server has the UI built in (``temporal server start-dev``); a self-hosted cluster runs
it as a process of its own, as here. ``ops/webui`` is the stock server plus one thing: without
an identity provider to log users in, every call it makes to the frontend carries the UI's own
token (``TEMPORAL_UI_TOKEN_FILE``), which grants read access only (TOKEN_PERMISSIONS["web-ui"]).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from devstack.config import REPO_ROOT, StackConfig
from devstack.pki import SERVER_NAME, ClusterPki
from devstack.processes import ProcessSpec, http_ok

NAME = "temporal-ui"
PRINCIPAL = "web-ui"
BUILD_HINT = "the Temporal Web UI is not built: `make temporal-ui` builds it (cluster mode's UI)"


def binary() -> Path | None:
    """``make temporal-ui``'s build, or DEVSTACK_TEMPORAL_UI_BIN; None when it is not there."""
    path = Path(os.environ.get("DEVSTACK_TEMPORAL_UI_BIN", REPO_ROOT / ".tools" / "temporal-ui" / "temporal-ui"))
    return path if path.exists() else None


def render_config(config: StackConfig, pki: ClusterPki) -> dict:
    """ui-server's configuration file (its ``config/<env>.yaml``; JSON is YAML)."""
    return {
        "temporalGrpcAddress": config.temporal_address,
        "host": config.host,
        "port": config.ports["temporal_ui"],
        "enableUi": True,
        "defaultNamespace": "agents",
        "disableNewsFetch": True,
        "notifyOnNewVersion": False,
        # Its token may only read: the UI hides the buttons the server would refuse anyway.
        "disableWriteActions": True,
        "tls": {
            "caFile": str(pki.ca_cert),
            "certFile": str(pki.client_cert),
            "keyFile": str(pki.client_key),
            "serverName": SERVER_NAME,
            "enableHostVerification": True,
        },
        # The browser calls the codec server itself; on loopback it may decode without a token
        # (the stack's codec server grants anonymous decode there and audits it).
        "codec": {"endpoint": config.codec_server_url},
        "auth": {"enabled": False},
        "cors": {"cookieInsecure": True, "allowOrigins": config.ui_origins},
    }


def spec(config: StackConfig, directory: Path, pki: ClusterPki, token_file: Path) -> ProcessSpec | None:
    """The UI process, or None when it is not built (the stack runs without it and says so)."""
    exe = binary()
    if exe is None:
        return None
    (directory / "config").mkdir(parents=True, exist_ok=True)
    (directory / "config" / "cluster.yaml").write_text(json.dumps(render_config(config, pki), indent=2))
    return ProcessSpec(
        name=NAME,
        argv=[str(exe), "--root", str(directory), "--config", "config", "--env", "cluster"],
        ports=[config.ports["temporal_ui"]],
        ready=http_ok(f"{config.ui_url}/healthz"),
        env={"TEMPORAL_UI_TOKEN_FILE": str(token_file)},
    )
