"""The chart's rendered pods as local processes: everything a pod sees but Kubernetes itself.

Each pod starts the way its container would: the image's ENTRYPOINT and CMD (read from the
Dockerfile the image is built from), the chart's command and args, the image's ENV overlaid by the
chart's env, Secrets and volumes as local files and directories, container ports on free local
ports, Services resolving to those ports. Used by tests/deploy/test_chart_processes.py (one
release) and test_chart_rollout.py (agent versions added, ramped, promoted and retired).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import free_ports

from devstack.processes import http_ok
from devstack.secrets import CodecTokens, ensure_codec_tokens, ensure_mcp_tokens
from devstack.stack import DEV_DYNAMIC_CONFIG, retrieval_worker_binary
from devstack.temporal_setup import temporal_cli
from keyops.store import DirectoryStore, new_key_id, new_key_material
from support.dockerfile import image_config
from support.helm_chart import COMPONENT_DOCKERFILES, REPO, WORKLOADS, component_of, env_of, pod_spec

# What an image's executables are on this machine.
EXECUTABLES = {"python": sys.executable, "/retrieval-worker": str(retrieval_worker_binary())}
READY_TIMEOUT_S = 120


@dataclass
class Pod:
    component: str
    name: str
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
        # By workload name: several agent versions run the same component side by side.
        self.pods = {d["metadata"]["name"]: d for d in docs if d["kind"] in WORKLOADS}
        # Per workload, each named container port; every one gets a free local port, all taken
        # at once (ports taken one by one can repeat: each probe socket is closed again).
        self.named_ports = {
            name: {p["name"]: int(p["containerPort"]) for p in self._container(doc).get("ports", [])}
            for name, doc in self.pods.items()
        }
        wanted = sorted((w, port) for w, ports in self.named_ports.items() for port in ports.values())
        self.ports: dict[tuple[str, int], int] = dict(zip(wanted, free_ports(len(wanted)), strict=True))
        self.services = self._services()

    @staticmethod
    def _container(doc: dict) -> dict:
        [container] = pod_spec(doc)["containers"]
        return container

    def local_port(self, workload: str, port: int | str) -> int:
        """The local port of a workload's container port, given by number or by name."""
        number = self.named_ports[workload].get(port, port) if isinstance(port, str) else port
        return self.ports[(workload, int(number))]

    def _services(self) -> dict[str, str]:
        """``<service>:<port>`` -> ``127.0.0.1:<local port of the pod behind it>``."""
        found = {}
        for service in (d for d in self.docs if d["kind"] == "Service"):
            selector = service["spec"]["selector"].items()
            backends = [n for n, d in self.pods.items() if selector <= self._labels(d).items()]
            if not backends:
                continue
            for port in service["spec"]["ports"]:
                local = self.local_port(backends[0], port.get("targetPort", port["port"]))
                found[f"{service['metadata']['name']}:{port['port']}"] = f"127.0.0.1:{local}"
        return found

    @staticmethod
    def _labels(doc: dict) -> dict[str, str]:
        return doc["metadata"]["labels"] if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]["labels"]

    def pod(self, doc: dict, secrets: dict[str, Path]) -> Pod:
        """The process a pod's single container runs; ``secrets``: Secret name -> directory."""
        component, workload = component_of(doc), doc["metadata"]["name"]
        spec = pod_spec(doc)
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
        container_ports = self.named_ports.get(workload, {}).values()

        def local(value: str) -> str:
            for mount in sorted(mounts, key=len, reverse=True):  # /data/blobs before /data
                if value == mount or value.startswith(mount + "/"):
                    return str(mounts[mount]) + value[len(mount) :]
            for service, address in self.services.items():
                value = value.replace(service, address)
            for port in container_ports:
                if value == str(port):
                    return str(self.local_port(workload, port))
                if value.endswith(f":{port}"):
                    return value.removesuffix(str(port)) + str(self.local_port(workload, port))
            return value

        ready_url = None
        if probe := container.get("readinessProbe", {}).get("httpGet"):
            ready_url = f"http://127.0.0.1:{self.local_port(workload, probe['port'])}{probe['path']}"
        return Pod(
            component=component,
            name=workload,
            argv=[EXECUTABLES.get(argv[0], argv[0]), *(local(a) for a in argv[1:])],
            env={name: local(value) for name, value in env.items()},
            ready_url=ready_url,
            log=self.root / f"{workload}.log",
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
                local = self.files / component / mount["name"]  # a StatefulSet's claim outlives its pod
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


def start(pod: Pod) -> None:
    # Only what the container would have: its env (and a PATH to find the temporal CLI).
    env = {"PATH": search_path(), "HOME": str(pod.log.parent), **pod.env}
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


@contextmanager
def empty_dev_server(tmp_path: Path) -> Iterator[str]:
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


def make_secrets(root: Path) -> tuple[dict[str, Path], CodecTokens]:
    """The Secrets the chart refers to, made as the chart README says: Secret name -> directory,
    and the codec server's tokens (an auditor's among them)."""
    (root / "secrets").mkdir()
    keyring = root / "secrets" / "codec-keys"
    store = DirectoryStore(keyring)
    store.create()
    store.add_key(new_key_id("*", set()), new_key_material(), activate_for="*")
    tokens_dir = root / "secrets" / "codec-server-tokens"
    tokens_dir.mkdir()
    tokens = ensure_codec_tokens(root / "secrets" / "tokens-source")
    shutil.copy(tokens.tokens_file, tokens_dir / "tokens.json")
    mcp_dir = root / "secrets" / "mcp-server-tokens"
    mcp_dir.mkdir()
    shutil.copy(ensure_mcp_tokens(root / "secrets" / "tokens-source").tokens_file, mcp_dir / "tokens.json")
    return {"codec-keys": keyring, "codec-server-tokens": tokens_dir, "mcp-server-tokens": mcp_dir}, tokens


def search_path() -> str:
    """PATH for the pods: this interpreter's and the temporal CLI's (the images' own tools)."""
    return f"{Path(temporal_cli()).parent}:{os.environ['PATH']}"


def run_to_completion(pod: Pod, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """A Job's or a test Pod's container, run once to its end, as the kubelet would."""
    env = {"PATH": search_path(), "HOME": str(pod.log.parent), **pod.env}
    return subprocess.run(pod.argv, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=pod.log.parent)


def the_one(docs: list[dict], kind: str, component: str, hook: str | None = None) -> dict:
    """The single ``kind`` of ``component`` (of the hook ``hook``, for Jobs) in a render."""
    found = [
        d
        for d in docs
        if d["kind"] == kind
        and component_of(d) == component
        and (hook is None or d["metadata"].get("annotations", {}).get("helm.sh/hook") == hook)
    ]
    assert len(found) == 1, f"expected one {kind} {component} {hook or ''}, found {len(found)}"
    return found[0]
