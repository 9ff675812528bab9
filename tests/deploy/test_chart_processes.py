"""The chart's configuration runs the real system, everything but Kubernetes itself.

The chart is rendered for a self-hosted cluster; then each pod is started the way its container
would start: the image's ENTRYPOINT and CMD (read from the Dockerfile the image is built from),
the chart's command and args, the image's ENV overlaid by the chart's env, Secrets and volumes
as local files and directories, container ports on free local ports, Services resolving to those
ports. The setup hook's own script creates the namespaces, the search attribute and the Nexus
endpoints on a fresh Temporal dev server that has nothing else. Then every process must report
ready on the probe the chart gives it; the agent pools' Worker Deployment Version is made current
by the chart's post-install hook (``rollout apply``); the chart's ``helm test`` Pod (the agent's
system check: every hop, model, embeddings, retrieval and business through Nexus) must pass
through them; the SDK's series scraped through the chart's ServiceMonitor relabelling by a real
Prometheus keep their Temporal ``namespace`` label; an auditor's token must decode a payload
through the codec server (and no token must not); and every process must exit 0 on SIGTERM
within its pod's grace period. A setting the chart gets wrong (a variable name, a path, a port,
a probe, an endpoint) fails here as it would on a cluster.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from google.protobuf.json_format import MessageToDict
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from support.chart_processes import (
    LocalCluster,
    empty_dev_server,
    make_secrets,
    run_to_completion,
    start,
    stop,
    the_one,
    wait_ready,
)
from support.helm_chart import (
    COMPONENT_DOCKERFILES,
    OFF_BY_DEFAULT,
    SKIP_WITHOUT_HELM,
    WORKLOADS,
    component_of,
    pod_spec,
    render,
)
from support.service_monitor import OPERATOR_PREFIX, prometheus_scraping, relabel_configs, series
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import RateLimitSource, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from devstack import prometheus
from devstack.secrets import ensure_mcp_tokens
from payload_codec import DirectoryKeySource, EncryptionCodec

pytestmark = SKIP_WITHOUT_HELM

BUILD_ID = "2026.12.06-1"
# The provider's limit, as llmWorker.queueRatePerSecond: the server enforces it for the queue.
LLM_QUEUE_RATE = 25


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
    with empty_dev_server(tmp_path) as address:
        yield address


async def llm_queue_rate_limit(address: str) -> tuple[float, int]:
    """The rate limit the server applies to the llm activity queue, and where it came from."""
    client = await Client.connect(address, namespace="agents")
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="agents",
            task_queue=TaskQueue(name="llm"),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_config=True,
        )
    )
    return described.effective_rate_limit.requests_per_second, described.effective_rate_limit.rate_limit_source


async def lookup_over_mcp(url: str, token: str) -> dict:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                result = await client.call_tool("lookup_order", {"order_id": "ORD-1004"})
    assert not result.is_error, result.content
    return dict(result.structured_content or {})


async def test_the_rendered_chart_runs_every_process_and_answers_the_system_check(
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
        f"agent.image.tag={BUILD_ID}",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        f"llmWorker.queueRatePerSecond={LLM_QUEUE_RATE}",
    )
    cluster = LocalCluster(tmp_path, docs)
    secrets, tokens = make_secrets(tmp_path)
    keyring = secrets["codec-keys"]

    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    assert {component_of(d) for d in workloads} == {"setup", *COMPONENT_DOCKERFILES} - OFF_BY_DEFAULT

    # The setup hook first, as Helm runs it: its script against the empty server.
    done = run_to_completion(cluster.pod(the_one(docs, "Job", "setup"), secrets))
    assert done.returncode == 0, done.stdout + done.stderr
    for line in (
        "namespace agents created",
        "search attribute AgentPendingApprovals (Int) in agents",
        "Nexus endpoint retrieval -> retrieval/retrieval (create)",
        "Nexus endpoint business -> business/business (create)",
    ):
        assert f"setup: {line}" in done.stdout, done.stdout

    long_running = [d for d in workloads if d["kind"] in ("Deployment", "StatefulSet")]
    pods = [cluster.pod(d, secrets) for d in long_running]
    try:
        for pod in pods:
            start(pod)
        for pod in pods:
            wait_ready(pod)

        # The agent pools joined their Worker Deployment Version (build id: the agent image's
        # tag); the post-install hook makes it current, or no workflow would start.
        agent = next(p for p in pods if p.component == "agent-worker")
        assert agent.env["TEMPORAL_WORKER_BUILD_ID"] == BUILD_ID
        applied = run_to_completion(cluster.pod(the_one(docs, "Job", "rollout", "post-install,post-upgrade"), secrets))
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert f"promoted {BUILD_ID} to current" in applied.stdout, applied.stdout

        # `helm test`: the system check Pod, every hop once, through the processes as configured.
        check = run_to_completion(cluster.pod(the_one(docs, "Pod", "system-check"), secrets), timeout_s=180)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "hops answered" in check.stdout, check.stdout

        # The llm pool's provider limit is the task queue's, held by the server for every pod.
        limit, source = await llm_queue_rate_limit(temporal_server)
        assert (limit, source) == (LLM_QUEUE_RATE, RateLimitSource.RATE_LIMIT_SOURCE_WORKER)

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
        operator = ensure_mcp_tokens(tmp_path / "secrets" / "tokens-source").operator_token_file.read_text().strip()
        order = await lookup_over_mcp(mcp_url, operator)
        assert order["order_id"] == "ORD-1004" and order["currency"] == "USD", order

        # On a shared Prometheus, through the ServiceMonitor's relabelling, the SDK's series keep
        # their Temporal "namespace" label; the Kubernetes one moves aside and "release" is added.
        # The same scrape without the chart's relabelings shows what it prevents.
        assert prometheus.binary(), "prometheus is not installed: run `make prometheus`"
        [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor"]
        [endpoint] = [e for e in monitor["spec"]["endpoints"] if e["port"] == "metrics"]
        metrics = f"127.0.0.1:{cluster.local_port(agent.name, 'metrics')}"
        jobs = {"chart": relabel_configs(endpoint), "operator-only": OPERATOR_PREFIX}
        with prometheus_scraping(prometheus.binary(), tmp_path / "prometheus", metrics, "durable-agents", jobs) as url:
            slots = "temporal_worker_task_slots_available"
            [kept, *_] = series(url, f'{slots}{{job="chart"}}')
            assert (kept["namespace"], kept["kubernetes_namespace"], kept["release"]) == (
                "agents",
                "durable-agents",
                "agents",
            )
            assert "exported_namespace" not in kept, kept
            [pushed, *_] = series(url, f'{slots}{{job="operator-only"}}')
            assert (pushed["namespace"], pushed["exported_namespace"]) == ("durable-agents", "agents"), pushed

        # A rolling update's SIGTERM: every process drains and exits cleanly within its pod's grace.
        grace = {d["metadata"]["name"]: pod_spec(d).get("terminationGracePeriodSeconds", 30) for d in long_running}
        exits = {pod.name: stop(pod, grace[pod.name]) for pod in reversed(pods)}
        assert exits == dict.fromkeys(exits, 0), f"exit codes (None: killed after its grace): {exits}"
    finally:
        for pod in reversed(pods):
            stop(pod)
