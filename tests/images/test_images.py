"""The chart's pods as real containers of the project's images (``make test-images``).

``make base-images images`` builds the images first (podman, storage in ``.tools/podman``). The
chart is rendered for a self-hosted cluster with the model simulator on, and each rendered pod
runs as a container of the image it names: the chart's command and args, its env (the image's
own ENV underneath), its securityContext (user, read-only root, no capabilities), its Secrets,
ConfigMaps and volumes as bind mounts at their mount paths, owned and moded as the kubelet would
make them. The containers share the host's network (the only network podman has here), so every
container port is moved to a free local port and every Service name resolves to it, as in the
chart's process test. The setup hook runs first, in a Debian container with the temporal CLI,
against a fresh dev server. Then every long-running container must pass its readiness probe,
the post-install rollout hook (the agent image's rollout CLI) must make the agent version
current, the ``helm test`` system-check Pod must pass every hop through them, the codec server
must decode for an auditor's token only, and every container must exit 0 on SIGTERM
(``podman stop``) within its pod's grace period.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy.test_chart_processes import decode_status, temporal_server  # noqa: F401 (a fixture)
from google.protobuf.json_format import MessageToDict
from support.chart_processes import LocalCluster, make_secrets, the_one
from support.helm_chart import (
    COMPONENT_DOCKERFILES,
    SKIP_WITHOUT_HELM,
    WORKLOADS,
    component_of,
    env_of,
    pod_spec,
    render,
)
from temporalio.api.common.v1 import Payload

from devstack.processes import http_ok
from devstack.temporal_setup import temporal_cli
from payload_codec import DirectoryKeySource, EncryptionCodec

pytestmark = SKIP_WITHOUT_HELM

REPO = Path(__file__).resolve().parents[2]
IMAGES_SH = REPO / "ops" / "images" / "images.sh"
TAG = os.environ.get("IMAGE_TAG", "dev")
# The setup hook's image (Temporal's admin-tools: a shell and the temporal CLI) is not ours: its
# stand-in is the local Debian base with this machine's temporal CLI mounted in.
SETUP_IMAGE = "localhost/durable-agents-base/debian-python:bookworm"
READY_TIMEOUT_S = 180


def podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(IMAGES_SH), "podman", *args], capture_output=True, text=True, timeout=timeout)


# What no runtime image may hold (relative to its root): the package managers and compilers of
# the build stages, and the build stages' source tree.
BUILD_LEFTOVERS = ("usr/local/bin/uv", "bin/uv", "usr/local/go", "usr/bin/gcc", "usr/bin/cc", "src", "app/src")
IMAGE_NAMES = (
    "agent-worker",
    "retrieval-worker",
    "business-worker",
    "codec-server",
    "model-server",
    "mcp-server",
    "approval-portal",
)


@dataclass
class Container:
    component: str
    image: str
    env: dict[str, str]
    argv: list[str]  # podman run's arguments
    ready_url: str | None
    grace_s: int
    id: str = ""

    def logs(self) -> str:
        done = podman("logs", "--tail", "60", self.id) if self.id else None
        return (done.stdout + done.stderr) if done else "(never started)"


class ContainerCluster(LocalCluster):
    """Pods as podman containers: mounts at their real paths, ports and Services moved to free
    local ports (one host network), volumes owned by the pod's user."""

    def container(self, doc: dict, secrets: dict[str, Path], *, probe_only: bool = False) -> Container:
        """The container of a pod; ``probe_only``: its image alone (nothing made on disk)."""
        component, workload = component_of(doc), doc["metadata"]["name"]
        spec = pod_spec(doc)
        [c] = spec["containers"]
        if probe_only:
            return Container(component, c["image"], {}, [], None, 0)
        pod_security, security = spec.get("securityContext", {}), c.get("securityContext", {})
        uid = security.get("runAsUser", pod_security.get("runAsUser", 0))
        gid = security.get("runAsGroup", pod_security.get("runAsGroup", uid))
        assert uid != 0 and (pod_security.get("runAsNonRoot") or security.get("runAsNonRoot")), component

        argv = ["--name", f"{workload}-{os.getpid()}", "--network", "host", "--user", f"{uid}:{gid}"]
        argv += ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
        # The kubelet ignores an image's HEALTHCHECK (the chart's probes stand in for it), and
        # podman's health timers need systemd, which this machine's containers do not have.
        argv += ["--health-cmd", "none"]
        if security.get("readOnlyRootFilesystem"):
            argv += ["--read-only", "--read-only-tmpfs=false"]
        if security.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        argv += [f"--cap-drop={cap}" for cap in security.get("capabilities", {}).get("drop", [])]
        for path, local in self._pod_mounts(component, spec, c, secrets, uid, gid).items():
            argv += ["-v", f"{local}:{path}:{'ro' if self._read_only(c, path) else 'rw'}"]
        image = c["image"] if component in COMPONENT_DOCKERFILES else SETUP_IMAGE
        if image == SETUP_IMAGE:
            argv += ["-v", f"{temporal_cli()}:/usr/local/bin/temporal:ro"]
        env = {**self._image_env(image), **{n: e["value"] for n, e in env_of(c).items()}}
        env = {name: self._local(workload, value) for name, value in env.items()}
        argv += [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
        if "command" in c:
            argv += ["--entrypoint", json.dumps(c["command"])]
        argv += [image, *(self._local(workload, a) for a in c.get("args", []))]

        ready_url = None
        if probe := c.get("readinessProbe", {}).get("httpGet"):
            ready_url = f"http://127.0.0.1:{self.local_port(workload, probe['port'])}{probe['path']}"
        return Container(component, image, env, argv, ready_url, spec.get("terminationGracePeriodSeconds", 30))

    @staticmethod
    def _read_only(c: dict, path: str) -> bool:
        return any(m["mountPath"] == path and m.get("readOnly") for m in c.get("volumeMounts", []))

    @staticmethod
    def _image_env(image: str) -> dict[str, str]:
        done = podman("image", "inspect", "--format", "{{json .Config.Env}}", image)
        assert done.returncode == 0, f"image {image} is missing; run `make base-images images` first: {done.stderr}"
        pairs = (item.partition("=") for item in json.loads(done.stdout) or [])
        return {name: value for name, _, value in pairs if name != "PATH"}

    def _local(self, workload: str, value: str) -> str:
        """Service names and container ports -> their local ports (paths stay as the pod sees them)."""
        for service, address in self.services.items():
            value = value.replace(service, address)
        for port in self.named_ports.get(workload, {}).values():
            if value == str(port):
                return str(self.local_port(workload, port))
            if value.endswith(f":{port}"):
                return value.removesuffix(str(port)) + str(self.local_port(workload, port))
        return value

    def _pod_mounts(
        self, component: str, spec: dict, c: dict, secrets: dict[str, Path], uid: int, gid: int
    ) -> dict[str, Path]:
        """Each mount as a local directory the pod's user can use: Secrets copied per pod with
        their defaultMode (the kubelet makes each pod its own copy), volumes owned by the pod."""
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = self._mounts(component, spec, c, secrets)
        for m in c.get("volumeMounts", []):
            local, volume = mounts[m["mountPath"]], volumes.get(m["name"], {})
            source = volume.get("secret") or volume.get("configMap")
            if source:
                copy = self.files / "pods" / component / m["name"]
                shutil.copytree(local, copy, dirs_exist_ok=True)
                mode = source.get("defaultMode", 0o644)
                for f in copy.iterdir():
                    f.chmod(mode)
                    os.chown(f, uid, gid)
                os.chown(copy, uid, gid)
                mounts[m["mountPath"]] = copy
            else:
                os.chown(local, uid, gid)
        return mounts


def build_leftovers(image: str) -> list[str]:
    """The paths of BUILD_LEFTOVERS the image's file system holds."""
    mounted = podman("image", "mount", image)
    assert mounted.returncode == 0, mounted.stderr
    try:
        root = Path(mounted.stdout.strip())
        return [path for path in BUILD_LEFTOVERS if (root / path).exists()]
    finally:
        podman("image", "unmount", image)


def run_once(container: Container, cleanup: list[Container], timeout_s: float = 300) -> str:
    """A Job's or a test Pod's container, run to its end as the kubelet would: its log."""
    cleanup.append(container)
    start(container)
    code = podman("wait", container.id, timeout=timeout_s).stdout.strip()
    log = podman("logs", container.id)
    assert code == "0", f"{container.component} exited with {code}:\n{log.stdout}{log.stderr}"
    return log.stdout + log.stderr


def start(container: Container) -> None:
    done = podman("run", "-d", *container.argv)
    assert done.returncode == 0, f"{container.component}: podman run failed: {done.stderr}"
    container.id = done.stdout.strip().splitlines()[-1]


def wait_ready(container: Container) -> None:
    assert container.ready_url, f"{container.component} has no readiness probe"
    ready = http_ok(container.ready_url)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        state = podman("inspect", "--format", "{{.State.Status}}", container.id).stdout.strip()
        if state != "running":
            pytest.fail(f"{container.component} is {state}:\n{container.logs()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"{container.component} not ready on {container.ready_url} in {READY_TIMEOUT_S}s:\n{container.logs()}"
            )
        time.sleep(1)


def stop(container: Container) -> tuple[int, float]:
    """SIGTERM as the kubelet sends it, SIGKILL after the grace period: (exit code, seconds)."""
    started = time.monotonic()
    podman("stop", "--time", str(container.grace_s), container.id, timeout=container.grace_s + 60)
    code = podman("inspect", "--format", "{{.State.ExitCode}}", container.id).stdout.strip()
    return int(code or -1), time.monotonic() - started


@pytest.fixture
def cleanup() -> Iterator[list[Container]]:
    started: list[Container] = []
    yield started
    # Stopping the client does not stop a container: remove them by id, in one call (vfs deletes
    # a full copy of the image per container: tens of seconds each on a loaded machine).
    if ids := [container.id for container in started if container.id]:
        podman("rm", "-f", "--time", "0", *ids, timeout=600)


@pytest.mark.timeout(1500)  # eight containers, each a full copy of its image on vfs
def test_every_image_runs_its_chart_pod_and_answers_the_system_check(
    temporal_server: str,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    cleanup: list[Container],
) -> None:
    docs = render(
        "--set", f"temporal.address={temporal_server}",
        "--set", "setup.createNamespaces=true",
        "--set", "modelServer.enabled=true",
        "--set", f"image.tag={TAG}",
        "--set", f"agent.image.tag={TAG}",
    )  # fmt: skip
    tmp_path.chmod(0o755)  # the containers' users reach their mounts through it
    cluster = ContainerCluster(tmp_path, docs)

    # Every image runs as a non-root user, and carries no build tool, source tree or test code.
    ours = [d for d in docs if d["kind"] in WORKLOADS and component_of(d) in COMPONENT_DOCKERFILES]
    images = {cluster.container(d, {}, probe_only=True).image for d in ours}
    # Every image the render runs is one `make images` builds (the approval portal is off by default).
    assert images <= {f"durable-agents/{name}:{TAG}" for name in IMAGE_NAMES}, images
    assert len(images) >= len(IMAGE_NAMES) - 1, images
    for image in sorted(images):
        user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
        assert user.split(":")[0] not in ("", "0", "root"), f"{image} runs as {user!r}"
        assert not (found := build_leftovers(image)), f"{image} carries {found}"

    secrets, tokens = make_secrets(tmp_path)
    keyring = secrets["codec-keys"]

    # The setup hook first, as Helm runs it, against the empty server.
    setup = run_once(cluster.container(the_one(docs, "Job", "setup"), secrets), cleanup)
    assert "setup: Nexus endpoint business -> business/business (create)" in setup

    long_running = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    pods = [cluster.container(d, secrets) for d in long_running]
    cleanup.extend(pods)
    for pod in pods:
        start(pod)
    for pod in pods:
        wait_ready(pod)

    # The post-install hook (the agent image's rollout CLI) makes the agent pools' version current.
    agent = next(p for p in pods if p.component == "agent-worker")
    assert agent.env["TEMPORAL_WORKER_BUILD_ID"] == TAG
    hook = the_one(docs, "Job", "rollout", "post-install,post-upgrade")
    assert f"promoted {TAG} to current" in run_once(cluster.container(hook, secrets), cleanup)

    # `helm test`: the system check Pod (the agent image's CLI), every hop once.
    check = run_once(cluster.container(the_one(docs, "Pod", "system-check"), secrets), cleanup)
    assert "hops answered" in check, check

    codec_pod = next(p for p in pods if p.component == "codec-server")
    codec_url = codec_pod.ready_url.removesuffix("/healthz")  # type: ignore[union-attr]
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"order": "ORD-1004"}')
    [sealed] = EncryptionCodec(DirectoryKeySource(keyring).load(), "agents").encode_sync([plain])
    body = json.dumps({"payloads": [MessageToDict(sealed)]}).encode()
    assert decode_status(codec_url, body, None)[0] == 401
    status, answer = decode_status(codec_url, body, tokens.auditor_token_file.read_text().strip())
    assert status == 200 and base64.b64decode(answer["payloads"][0]["data"]) == plain.data, answer

    # A rolling update's SIGTERM: each container exits 0 before its grace period runs out.
    stops = {pod.component: stop(pod) for pod in reversed(pods)}
    late = {c: (code, round(s, 1)) for c, (code, s) in stops.items() if code != 0}
    assert not late, f"(exit code, seconds) of containers that did not stop cleanly: {late}; all: {stops}"
