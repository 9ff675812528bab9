"""Every process's /metrics against ops/metrics/catalogue.yaml, after a real conversation.

The run: an index operation from Python (a workflow and activities in the Go worker), \
a policy question (a retrieval tool call through Nexus to the Go worker), a refund
above the threshold (an approval, counted by the visibility gauge while it waits), approved
(a refund in the business worker), an escalation (a ticket), and one request to the codec
server. Then every process is
scraped and checked: the catalogue's metrics are there with their labels, nothing
uncatalogued is exported, label values stay in their bounds, and the Python and Go workers
name the Temporal SDK's metrics identically.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from support.probe_workflows import IndexAndSearchWorkflow
from temporalio.client import Client
from temporalio.worker import Worker

from agent.chat.client import Conversations
from agent.support.types import ApprovalStatus, ConversationSettings, ConversationStart
from agent.testing import eventually
from devstack.config import REPO_ROOT
from devstack.stack import Stack
from nexus_contracts.retrieval import IndexDocument, IndexRequest

CATALOGUE = yaml.safe_load((REPO_ROOT / "ops" / "metrics" / "catalogue.yaml").read_text())
PYTHON_WORKERS = ("agent-worker", "business-worker")
GO_WORKER = "retrieval-worker"
# Processes whose /metrics this project writes (the Temporal dev server's are the server's own).
OWN_JOBS = tuple(CATALOGUE["processes"])


@dataclass
class Family:
    type: str
    labels: set[str] = field(default_factory=set)
    values: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def exposed_name(family: Any) -> str:
    # The parser strips _total from counter families; the catalogue uses the scraped name.
    return f"{family.name}_total" if family.type == "counter" else family.name


def parse(text: str) -> dict[str, Family]:
    families: dict[str, Family] = {}
    for fam in text_string_to_metric_families(text):
        entry = families.setdefault(exposed_name(fam), Family(fam.type))
        for sample in fam.samples:
            for label, value in sample.labels.items():
                if label in ("le", "quantile"):
                    continue
                entry.labels.add(label)
                entry.values[label].add(value)
    # prometheus_client's companion series of a counter or histogram (its creation time).
    for name in [n for n in families if n.endswith("_created")]:
        base = name.removesuffix("_created")
        if base in families or base + "_total" in families:
            del families[name]
    return families


def scrape(target: str) -> dict[str, Family]:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as response:
        return parse(response.read().decode())


def scrape_all(stack: Stack) -> dict[str, dict[str, Family]]:
    targets = stack.config.metrics_targets()
    return {job: scrape(targets[job]) for job in OWN_JOBS}


def catalogued() -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in CATALOGUE["metrics"]}


def allowed_labels(metric: dict[str, Any]) -> set[str]:
    meter = CATALOGUE["meter_labels"].get(metric.get("meter", ""), [])
    return set(metric["labels"]) | set(meter) | set(CATALOGUE["constant_labels"])


def is_sdk_or_standard(name: str) -> bool:
    return name.startswith((CATALOGUE["sdk_prefix"], *CATALOGUE["standard_prefixes"]))


async def codec_server_decode(stack: Stack, client: Client) -> None:
    """One decode request, as the UI makes, so the codec server's request metrics exist."""
    [payload] = await client.data_converter.encode(["metrics test"])
    body = json.dumps(
        {
            "payloads": [
                {
                    "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
                    "data": base64.b64encode(payload.data).decode(),
                }
            ]
        }
    ).encode()
    token = stack.codec_tokens.auditor_token_file.read_text().strip()
    request = urllib.request.Request(
        f"{stack.config.codec_server_url}/agents/decode",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def index_through_nexus(client: Client) -> None:
    """An index operation runs a workflow and activities in the Go worker, so the Go side has
    workflow and activity metrics to compare with the Python workers'."""
    suffix = uuid.uuid4().hex[:8]
    documents = [
        IndexDocument(
            id=f"doc-{i}",
            version=1,
            title=title,
            text=f"{title}, for the metrics test.",
            metadata={},
            vector=[1.0 if j == i else 0.0 for j in range(4)],
        )
        for i, title in enumerate(["Warranty claims", "Express shipping"])
    ]
    async with Worker(client, task_queue=f"metrics-probe-{suffix}", workflows=[IndexAndSearchWorkflow]):
        await client.execute_workflow(
            IndexAndSearchWorkflow.run,
            IndexRequest(collection=f"metrics-{suffix}", batch_id="b1", documents=documents),
            id=f"metrics-index-{suffix}",
            task_queue=f"metrics-probe-{suffix}",
            execution_timeout=timedelta(seconds=120),
        )


def gauge_value(stack: Stack, name: str) -> float:
    target = stack.config.metrics_targets()["agent-worker"]
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


@pytest.fixture(scope="module")
async def scraped(stack: Stack, agents_client: Client) -> dict[str, dict[str, Family]]:
    conversations = Conversations(agents_client)
    cid = await conversations.start(
        ConversationStart(settings=ConversationSettings(approval_threshold_cents=500), customer_id="cust-katherine"),
        f"test-metrics-{uuid.uuid4().hex[:10]}",
    )
    reply = await conversations.send(cid, "How long does a refund take?")
    assert "search_knowledge" in reply.tools_used, reply
    reply = await conversations.send(cid, "Please refund $7 on order ORD-1004, the case is torn")
    assert reply.approvals_requested == ["APR-1"], reply.text

    # The gauges come from visibility, so they count this approval whichever worker asks.
    async def counted() -> bool:
        return (
            gauge_value(stack, "agent_approvals_waiting") >= 1 and gauge_value(stack, "agent_conversations_active") >= 1
        )

    await eventually(counted, 45, "the visibility gauges to count the waiting approval")
    outcome = await conversations.decide(cid, "APR-1", approve=True, approver="lead-metrics")
    assert outcome.status == ApprovalStatus.EXECUTED, outcome
    reply = await conversations.send(cid, "Please escalate order ORD-1004 to a human")
    assert "escalate_to_human" in reply.tools_used, reply  # opens a ticket
    await codec_server_decode(stack, agents_client)
    await index_through_nexus(agents_client)
    return scrape_all(stack)


def test_every_catalogued_metric_the_run_produces_is_there_with_its_labels(
    scraped: dict[str, dict[str, Family]],
) -> None:
    missing, wrong_labels = [], []
    for metric in CATALOGUE["metrics"]:
        if "produced" in metric:
            continue  # failure-only or another workload's; listed with the reason in the catalogue
        for job in metric["processes"]:
            family = scraped[job].get(metric["name"])
            if family is None:
                missing.append(f"{metric['name']} on {job}")
                continue
            if family.type != metric["type"]:
                wrong_labels.append(f"{metric['name']} on {job} is a {family.type}, catalogued {metric['type']}")
            if not set(metric["labels"]) <= family.labels:
                wrong_labels.append(
                    f"{metric['name']} on {job} has labels {sorted(family.labels)}, "
                    f"catalogued {sorted(metric['labels'])}"
                )
    assert not missing, f"catalogued metrics not exported: {missing}"
    assert not wrong_labels, wrong_labels


def test_nothing_uncatalogued_and_label_values_in_bounds(scraped: dict[str, dict[str, Family]]) -> None:
    catalogue = catalogued()
    problems = []
    for job, families in scraped.items():
        for name, family in families.items():
            if is_sdk_or_standard(name):
                continue
            metric = catalogue.get(name)
            if metric is None or job not in metric["processes"]:
                problems.append(f"{job} exports {name}, which the catalogue does not list for it")
                continue
            if extra := family.labels - allowed_labels(metric):
                problems.append(f"{name} on {job} has uncatalogued labels {sorted(extra)}")
            for label, allowed in metric["labels"].items():
                if isinstance(allowed, list) and (bad := family.values[label] - set(allowed)):
                    problems.append(f"{name} on {job}: {label} values {sorted(bad)} are not in {allowed}")
    assert not problems, "\n".join(problems)


def test_custom_metrics_count_what_the_run_did(scraped: dict[str, dict[str, Family]]) -> None:
    agent, business = scraped["agent-worker"], scraped["business-worker"]
    assert {"search_knowledge", "refund_order"} <= agent["agent_tool_calls_total"].values["tool"]
    assert "approved" in agent["agent_approval_decisions_total"].values["decision"]
    assert agent["agent_model_tokens_total"].values["kind"] == {"prompt", "completion"}
    assert "refunded" in business["business_refunds_total"].values["outcome"]
    for job in ("agent-worker", "business-worker", GO_WORKER, "codec-server"):
        assert {"encode", "decode"} & scraped[job]["codec_payloads_total"].values["operation"], job
        # Key ids are the key ring's: the dev stack's ids start with "dev-".
        assert all(k.startswith("dev") for k in scraped[job]["codec_payloads_total"].values["key_id"]), job


def base_concept(name: str) -> str:
    return re.sub(r"(_seconds|_milliseconds|_ms)?(_total)?$", "", name)


def test_python_and_go_sdk_metric_names_are_identical(scraped: dict[str, dict[str, Family]]) -> None:
    prefix = CATALOGUE["sdk_prefix"]
    go = {n: f for n, f in scraped[GO_WORKER].items() if n.startswith(prefix)}
    python: dict[str, Family] = {}
    for job in PYTHON_WORKERS:
        for name, family in scraped[job].items():
            if name.startswith(prefix):
                python.setdefault(name, family)
    assert go and python, "no SDK metrics scraped"

    # One concept, two names (a unit or _total suffix missing on one side) is the failure mode.
    go_by_concept = {base_concept(n): n for n in go}
    renamed = {
        (py_name, go_by_concept[base_concept(py_name)])
        for py_name in python
        if base_concept(py_name) in go_by_concept and go_by_concept[base_concept(py_name)] != py_name
    }
    assert not renamed, f"Python and Go name these SDK concepts differently: {sorted(renamed)}"

    # The concepts both emitted during the run, under the catalogue's names, with the same labels.
    concepts = CATALOGUE["sdk"]["concepts"]
    both = {concept: name for concept, name in concepts.items() if name in go and name in python}
    for required in CATALOGUE["sdk"]["checked_every_run"]:
        assert required in both, (
            f"{concepts[required]} is not emitted by both languages (Python: "
            f"{concepts[required] in python}, Go: {concepts[required] in go})"
        )
    # A query written against one language's labels works on the other's: Python's labels are
    # all on the Go series, and Go adds only the catalogued extras.
    # (The version labels depend on each process's settings, not on the SDK.)
    versions = set(CATALOGUE["constant_labels"])
    go_extra = set(CATALOGUE["sdk"]["go_extra_labels"]) | versions
    label_diff = {
        name: {
            "python only": sorted(python[name].labels - go[name].labels - versions),
            "go only, uncatalogued": sorted(go[name].labels - python[name].labels - go_extra),
        }
        for name in both.values()
        if python[name].labels - go[name].labels - versions or go[name].labels - python[name].labels - go_extra
    }
    assert not label_diff, f"label names differ between Python and Go: {label_diff}"


def test_nexus_handlers_are_measured_per_operation_in_both_languages(
    scraped: dict[str, dict[str, Family]],
) -> None:
    # The run called business get_order/refund/create_ticket (Python) and retrieval search/index (Go).
    calls, latency = "nexus_handler_operations_total", "nexus_handler_operation_latency_seconds"
    python, go = scraped["business-worker"], scraped[GO_WORKER]
    assert {"refund", "create_ticket"} <= python[calls].values["nexus_operation"], python[calls].values
    assert {"search", "index"} <= go[calls].values["nexus_operation"], go[calls].values
    assert python[calls].values["nexus_service"] == {"business"}
    assert go[calls].values["nexus_service"] == {"retrieval"}
    assert "ok" in python[calls].values["outcome"] and "ok" in go[calls].values["outcome"]
    versions = set(CATALOGUE["constant_labels"])
    for name in (calls, latency):
        assert python[name].labels - versions == go[name].labels - versions, (
            name,
            python[name].labels,
            go[name].labels,
        )
