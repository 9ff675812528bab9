"""The cluster's front door: one address for every client, balanced across the live frontends.

A platform team never hands clients one node's address: a node that dies would cut off every
client pinned to it. In Kubernetes the frontends sit behind a Service; on a laptop the stack runs
HAProxy (Debian's package, ``make haproxy``) in TCP mode in front of the three nodes' frontends:

- TLS passes through untouched, so mTLS and the JWT still end at the Temporal frontend (the proxy
  holds no certificate and sees no token);
- it health-checks each frontend every second and sends new connections only to live ones; a
  connection that finds a dead node before the check has noticed is redispatched to another;
- a node's death ends the connections through it at once (the kernel resets them); clients see
  UNAVAILABLE and reconnect through the front door to a live node, as gRPC clients and the SDKs'
  retry policies do.

It listens where the dev server does (gRPC ``temporal``, HTTP ``temporal_http``), so every client
that knows the dev stack finds the cluster at the same address, and serves HAProxy's own Prometheus
metrics (``haproxy_backend_active_servers`` and friends) on ``frontdoor_metrics``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from devstack.config import StackConfig
from devstack.processes import ProcessSpec, StackError, http_ok

NAME = "frontdoor"
INSTALL_HINT = "HAProxy is not installed: `make haproxy` installs Debian's package (cluster mode's front door)"
# How often each frontend is checked, and after how many failures it is out (or successes, in).
CHECK_INTERVAL = "1s"


def binary() -> str | None:
    return shutil.which("haproxy") or (p if Path(p := "/usr/sbin/haproxy").exists() else None)


def render_config(config: StackConfig, backends: dict[str, dict[str, int]]) -> str:
    """HAProxy's configuration: ``backends`` maps each protocol (``grpc``, ``http``) to the nodes'
    frontend ports by node name; the front door listens on the dev server's port for each."""
    host = config.host
    listen = {"grpc": config.ports["temporal"], "http": config.ports["temporal_http"]}
    lines = [
        "global",
        "    log stdout format raw local0 info",
        "    maxconn 4096",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option tcplog",
        "    option dontlognull",
        "    timeout connect 2s",
        # Long polls hold a request for about a minute; gRPC connections live for hours.
        "    timeout client 1h",
        "    timeout server 1h",
        # A connection that finds a dead node (before its check fails) goes to another node.
        "    retries 3",
        "    option redispatch 1",
    ]
    for protocol, nodes in backends.items():
        lines += [
            f"frontend {protocol}",
            f"    bind {host}:{listen[protocol]}",
            f"    default_backend {protocol}-frontends",
            f"backend {protocol}-frontends",
            # Connections are long-lived (HTTP/2): spread them by count, not by turn.
            "    balance leastconn",
            f"    default-server check inter {CHECK_INTERVAL} fall 2 rise 1 on-marked-down shutdown-sessions",
            *(f"    server {name} {host}:{port}" for name, port in nodes.items()),
        ]
    lines += [
        "frontend metrics",
        "    mode http",
        "    no log",
        f"    bind {host}:{config.ports['frontdoor_metrics']}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    http-request return status 200 content-type text/plain string ok if { path /healthz }",
    ]
    return "\n".join(lines) + "\n"


def spec(config: StackConfig, config_file: Path, backends: dict[str, dict[str, int]]) -> ProcessSpec:
    """The HAProxy process (foreground, logs to its log file), configured by :func:`render_config`."""
    haproxy = binary()
    if haproxy is None:
        raise StackError(INSTALL_HINT)
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(render_config(config, backends))
    host = config.host
    return ProcessSpec(
        name=NAME,
        # -db: stay in the foreground; the stack supervises it like every other process.
        argv=[haproxy, "-db", "-f", str(config_file)],
        ports=[config.ports["temporal"], config.ports["temporal_http"], config.ports["frontdoor_metrics"]],
        ready=http_ok(f"http://{host}:{config.ports['frontdoor_metrics']}/healthz"),
    )
