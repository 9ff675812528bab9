"""Where the external MCP servers are, and how the worker authenticates to them.

``AGENT_MCP_SERVERS_FILE`` (JSON) maps a server's name, as conversations name it, to its
streamable HTTP endpoint and, optionally, a file holding the bearer token to send::

    {"servers": {"parcels": {"url": "https://parcels.example/mcp", "token_file": "/run/secrets/parcels"}}}

Tokens are read from their files when a call is made (a rotated token takes effect at once)
and never logged, recorded or passed to the model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workerkit.errors import ConfigError

SERVERS_FILE_ENV = "AGENT_MCP_SERVERS_FILE"


@dataclass(frozen=True)
class ServerConfig:
    name: str
    url: str
    token_file: Path | None = None

    def headers(self) -> dict[str, str]:
        if self.token_file is None:
            return {}
        try:
            token = self.token_file.read_text().strip()
        except OSError as err:
            raise ConfigError(f"cannot read the token file of MCP server {self.name} ({err.strerror})") from None
        return {"Authorization": f"Bearer {token}"}


def load_servers(environ: Mapping[str, str] = os.environ) -> dict[str, ServerConfig]:
    """The configured servers by name; none when ``AGENT_MCP_SERVERS_FILE`` is not set."""
    path = environ.get(SERVERS_FILE_ENV, "").strip()
    if not path:
        return {}
    try:
        document = json.loads(Path(path).read_text())
        servers = document["servers"]
        found = {}
        for name, entry in servers.items():
            url = entry["url"]
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"server {name!r}: url must be an http(s) URL")
            token_file = entry.get("token_file")
            found[name] = ServerConfig(name, url, Path(token_file) if token_file else None)
    except OSError as err:
        raise ConfigError(f"cannot read {SERVERS_FILE_ENV}={path} ({err.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f'{SERVERS_FILE_ENV}={path} is not {{"servers": {{NAME: {{"url": ...}}}}}}: {err}') from None
    return found
