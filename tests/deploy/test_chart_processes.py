"""The chart's configuration runs the real system, everything but Kubernetes itself.

The chart is rendered for a self-hosted cluster; then each pod is started the way its container
would start: the image's ENTRYPOINT and CMD (read from the Dockerfile the image is built from),
the chart's command and args, the image's ENV overlaid by the chart's env, Secrets and volumes
as local files and directories, container ports on free local ports, Services resolving to those
ports. The setup hook's own script creates the namespaces, the search attribute and the Nexus
endpoints on a fresh Temporal dev server that has nothing else. Then every process must report
ready on the probe the chart gives it; the agent pools' Worker Deployment Version (build id: the
image tag) is made current with ``rollout promote``, as the chart README says; the agent's
system check (every hop: model, embeddings, retrieval and business through Nexus) must pass
through them; an auditor's token must decode a payload through the codec server (and no token
must not); and every process must exit 0 on SIGTERM within its pod's grace period. A setting
the chart gets wrong (a variable name, a path, a port, a probe, an endpoint) fails here as it
would on a cluster.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from google.protobuf.json_format import MessageToDict
from harness import free_ports
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from support.dockerfile import image_config
from support.helm_chart import (
    COMPONENT_DOCKERFILES,
    REPO,
    SKIP_WITHOUT_HELM,
    WORKLOADS,
    component_of,
    env_of,
    render,
)
from temporalio.api.common.v1 import Payload

from devstack.processes import http_ok
from devstack.secrets import ensure_codec_tokens, ensure_mcp_tokens
from devstack.stack import DEV_DYNAMIC_CONFIG, retrieval_worker_binary
from devstack.temporal_setup import temporal_cli
from keyops.store import DirectoryStore, new_key_id, new_key_material
from payload_codec import DirectoryKeySource, EncryptionCodec

pytestmark = SKIP_WITHOUT_HELM

# What an image's executables are on this machine.
EXECUTABLES = {"python": sys.executable, "/retrieval-worker": str(retrieval_worker_binary())}
READY_TIMEOUT_S = 120
BUILD_ID = "2026.12.06-1"


@dataclass
class Pod:
    component: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str | None
    log: Path
    process: subprocess.Popen | None = field(default=None, repr=False)


class LocalCluster:
    """Maps what a pod sees (mount paths, container ports, Service names) onto this machine."""

    def __init__(self, root: Path, docs: list[dict]) -> None:
        self.root = root
        self.files = root / "volumes"
        self.docs = docs
        self.pods = {component_of(d): d for d in docs if d["kind"] in WORKLOADS}
        # Per component, each named container port; every one gets a free local port, all taken
        # at once (ports taken one by one can repeat: each probe socket is closed again).
        self.named_ports = {
            component: {p["name"]: int(p["containerPort"]) for p in self._container(doc).get("ports", [])}
            for component, doc in self.pods.items()
        }
        wanted = sorted((c, port) for c, ports in self.named_ports.items() for port in ports.values())
        self.ports: dict[tuple[str, int], int] = dict(zip(wanted, free_ports(len(wanted)), strict=True))
        self.services = self._services()

    @staticmethod
    def _container(doc: dict) -> dict:
        [container] = doc["spec"]["template"]["spec"]["containers"]
        return container

    def local_port(self, component: str, port: int | str) -> int:
        """The local port of a container port, given by number or by name."""
        number = self.named_ports[component].get(port, port) if isinstance(port, str) else port
        return self.ports[(component, int(number))]

    def _services(self) -> dict[str, str]:
        """``<service>:<port>`` -> ``127.0.0.1:<local port of the pod behind it>``."""
        found = {}
        for service in (d for d in self.docs if d["kind"] == "Service"):
            component = service["spec"]["selector"].get("app.kubernetes.io/component", "")
            if component not in self.pods:
                continue
            for port in service["spec"]["ports"]:
                local = self.local_port(component, port.get("targetPort", port["port"]))
                found[f"{service['metadata']['name']}:{port['port']}"] = f"127.0.0.1:{local}"
        return found

    def pod(self, doc: dict, secrets: dict[str, Path]) -> Pod:
        """The process a pod's single container runs; ``secrets``: Secret name -> directory."""
        component = component_of(doc)
        spec = doc["spec"]["template"]["spec"]
        container = self._container(doc)
        mounts = self._mounts(component, spec, container, secrets)
        dockerfile = COMPONENT_DOCKERFILES.get(component)
        entrypoint, cmd, image_env = image_config(REPO / dockerfile) if dockerfile else ([], [], {})
        argv = container.get("command") or entrypoint
        argv = argv + (container["args"] if "args" in container else cmd)
        env: dict[str, str] = dict(image_env)
        for name, entry in env_of(container).items():
            assert "value" in entry, f"{component}: {name} comes from a Secret this render should not need"
            env[name] = entry["value"]
        env.pop("PATH", None)  # the image's venv; here, this interpreter's
        container_ports = self.named_ports[component].values()

        def local(value: str) -> str:
            for mount in sorted(mounts, key=len, reverse=True):  # /data/blobs before /data
                if value == mount or value.startswith(mount + "/"):
                    return str(mounts[mount]) + value[len(mount) :]
            for service, address in self.services.items():
                value = value.replace(service, address)
            for port in container_ports:
                if value == str(port):
                    return str(self.local_port(component, port))
                if value.endswith(f":{port}"):
                    return value.removesuffix(str(port)) + str(self.local_port(component, port))
            return value

        ready_url = None
        if probe := container.get("readinessProbe", {}).get("httpGet"):
            ready_url = f"http://127.0.0.1:{self.local_port(component, probe['port'])}{probe['path']}"
        return Pod(
            component=component,
            argv=[EXECUTABLES.get(argv[0], argv[0]), *(local(a) for a in argv[1:])],
            env={name: local(value) for name, value in env.items()},
            ready_url=ready_url,
            log=self.root / f"{component}.log",
        )

    def _mounts(self, component: str, spec: dict, container: dict, secrets: dict[str, Path]) -> dict[str, Path]:
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates", [])}
        mounts = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            if "secret" in volume:
                local = secrets[volume["secret"]["secretName"]]
            elif "configMap" in volume:
                local = self._config_map(volume["configMap"]["name"])
            elif "persistentVolumeClaim" in volume:
                local = self.files / "claims" / volume["persistentVolumeClaim"]["claimName"]
            else:  # emptyDir, or a StatefulSet's own claim
                assert "emptyDir" in volume or mount["name"] in claims or not volume, mount
                local = self.files / component / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = local
        return mounts

    def _config_map(self, name: str) -> Path:
        [config_map] = [d for d in self.docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name]
        directory = self.files / "configmaps" / name
        directory.mkdir(parents=True, exist_ok=True)
        for key, text in config_map.get("data", {}).items():
            (directory / key).write_text(text)
        return directory


def start(pod: Pod, path: str) -> None:
    # Only what the container would have: its env (and a PATH to find the temporal CLI).
    env = {"PATH": path, "HOME": str(pod.log.parent), **pod.env}
    with pod.log.open("w") as log:
        pod.process = subprocess.Popen(
            pod.argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=pod.log.parent, start_new_session=True
        )


def stop(pod: Pod, grace_s: float = 30) -> int | None:
    """SIGTERM, as the kubelet sends it; the exit code, or None if it had to be killed."""
    if pod.process is None:
        return None
    if pod.process.poll() is None:
        os.killpg(pod.process.pid, signal.SIGTERM)
    try:
        return pod.process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(pod.process.pid, signal.SIGKILL)
        pod.process.wait()
        return None


def wait_ready(pod: Pod) -> None:
    assert pod.ready_url and pod.process, f"{pod.component} has no readiness probe or was not started"
    ready = http_ok(pod.ready_url)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if pod.process.poll() is not None:
            pytest.fail(f"{pod.component} exited with {pod.process.returncode}:\n{pod.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            log = pod.log.read_text()[-3000:]
            pytest.fail(f"{pod.component} was not ready on {pod.ready_url} in {READY_TIMEOUT_S}s:\n{log}")
        time.sleep(0.5)


def decode_status(codec_url: str, body: bytes, token: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"{codec_url}/agents/decode", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


@pytest.fixture
def temporal_server(tmp_path: Path) -> Iterator[str]:
    """A dev server with nothing on it: no namespace but default, no endpoint, no attribute."""
    port, ui_port = free_ports(2)
    with (tmp_path / "temporal.log").open("w") as log:
        server = subprocess.Popen(
            [
                temporal_cli(),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--ui-port",
                str(ui_port),
                "--db-filename",
                str(tmp_path / "temporal.db"),
                *[arg for kv in DEV_DYNAMIC_CONFIG for arg in ("--dynamic-config-value", kv)],
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


async def lookup_over_mcp(url: str, token: str) -> dict:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                result = await client.call_tool("lookup_order", {"order_id": "ORD-1004"})
    assert not result.is_error, result.content
    return dict(result.structured_content or {})


def test_the_rendered_chart_runs_every_process_and_answers_the_system_check(
    temporal_server: str, tmp_path: Path
) -> None:
    docs = render(
        "--set",
        f"temporal.address={temporal_server}",
        "--set",
        "setup.createNamespaces=true",
        "--set",
        "modelServer.enabled=true",
        "--set",
        f"image.tag={BUILD_ID}",
    )
    cluster = LocalCluster(tmp_path, docs)

    # The Secrets the chart refers to, made as the chart README says.
    (tmp_path / "secrets").mkdir()
    keyring = tmp_path / "secrets" / "codec-keys"
    store = DirectoryStore(keyring)
    store.create()
    store.add_key(new_key_id("*", set()), new_key_material(), activate_for="*")
    tokens_dir = tmp_path / "secrets" / "codec-server-tokens"
    tokens_dir.mkdir()
    tokens = ensure_codec_tokens(tmp_path / "secrets" / "tokens-source")
    shutil.copy(tokens.tokens_file, tokens_dir / "tokens.json")
    mcp_dir = tmp_path / "secrets" / "mcp-server-tokens"
    mcp_dir.mkdir()
    mcp_tokens = ensure_mcp_tokens(tmp_path / "secrets" / "tokens-source")
    shutil.copy(mcp_tokens.tokens_file, mcp_dir / "tokens.json")
    secrets = {"codec-keys": keyring, "codec-server-tokens": tokens_dir, "mcp-server-tokens": mcp_dir}

    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    assert {component_of(d) for d in workloads} == {"setup", *COMPONENT_DOCKERFILES}
    path = f"{Path(temporal_cli()).parent}:{os.environ['PATH']}"

    # The setup hook first, as Helm runs it: its script against the empty server.
    [setup_doc] = [d for d in workloads if component_of(d) == "setup"]
    setup = cluster.pod(setup_doc, secrets)
    done = subprocess.run(setup.argv, env={"PATH": path, **setup.env}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in (
        "namespace agents created",
        "search attribute AgentPendingApprovals (Int) in agents",
        "Nexus endpoint retrieval -> retrieval/retrieval (create)",
        "Nexus endpoint business -> business/business (create)",
    ):
        assert f"setup: {line}" in done.stdout, done.stdout

    pods = [cluster.pod(d, secrets) for d in workloads if component_of(d) != "setup"]
    try:
        for pod in pods:
            start(pod, path)
        for pod in pods:
            wait_ready(pod)

        # The agent pools joined their Worker Deployment Version (build id: the image tag); after
        # a first install it is made current, as the chart README says, or no workflow starts.
        agent = next(p for p in pods if p.component == "agent-worker")
        assert agent.env["TEMPORAL_WORKER_BUILD_ID"] == BUILD_ID
        promote = subprocess.run(
            [
                sys.executable,
                "-m",
                "rollout",
                "promote",
                BUILD_ID,
                "-d",
                agent.env["TEMPORAL_DEPLOYMENT_NAME"],
                "--address",
                temporal_server,
                "--json",
            ],
            env={"PATH": path, "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert promote.returncode == 0, promote.stdout + promote.stderr

        # Every hop once, through the processes as the chart configured them.
        check = subprocess.run(
            [sys.executable, "-m", "agent", "check"],
            env={
                "PATH": path,
                "HOME": str(tmp_path),
                "TEMPORAL_ADDRESS": temporal_server,
                "CODEC_KEYRING_DIR": agent.env["CODEC_KEYRING_DIR"],
                "COLUMNS": "200",
            },
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "hops answered" in check.stdout, check.stdout

        # An auditor decodes a payload through the codec server as the chart configured it
        # (key ring and tokens from their Secrets); without a token it is refused.
        codec_pod = next(p for p in pods if p.component == "codec-server")
        codec_url = codec_pod.ready_url.removesuffix("/healthz")  # type: ignore[union-attr]
        plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"order": "ORD-1004"}')
        [sealed] = EncryptionCodec(DirectoryKeySource(keyring).load(), "agents").encode_sync([plain])
        body = json.dumps({"payloads": [MessageToDict(sealed)]}).encode()
        auditor = tokens.auditor_token_file.read_text().strip()
        assert decode_status(codec_url, body, None)[0] == 401
        status, answer = decode_status(codec_url, body, auditor)
        assert status == 200 and base64.b64decode(answer["payloads"][0]["data"]) == plain.data, answer

        # An MCP client looks up an order through the MCP server as the chart configured it (a
        # workflow on the agent pool, Nexus to the business worker).
        mcp_pod = next(p for p in pods if p.component == "mcp-server")
        mcp_url = mcp_pod.ready_url.removesuffix("/readyz") + "/mcp"  # type: ignore[union-attr]
        order = asyncio.run(lookup_over_mcp(mcp_url, mcp_tokens.operator_token_file.read_text().strip()))
        assert order["order_id"] == "ORD-1004" and order["currency"] == "USD", order

        # A rolling update's SIGTERM: every process drains and exits cleanly within its pod's grace.
        grace = {
            component_of(d): d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30) for d in workloads
        }
        exits = {pod.component: stop(pod, grace[pod.component]) for pod in reversed(pods)}
        assert exits == dict.fromkeys(exits, 0), f"exit codes (None: killed after its grace): {exits}"
    finally:
        for pod in reversed(pods):
            stop(pod)
