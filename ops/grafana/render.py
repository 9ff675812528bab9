"""Renders ops/grafana/dashboards/*.json (Grafana JSON model) from the panel lists below.

The JSON files are what Grafana loads (file provisioning or the sidecar); this script keeps the
layout, datasource variable and panel ids consistent. After editing a panel here:
    .venv/bin/python ops/grafana/render.py            # rewrite the dashboards
    .venv/bin/python ops/grafana/render.py --configmaps DIR   # also write sidecar ConfigMaps
tests/ops/test_dashboards.py fails when the JSON and this file disagree.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DASHBOARDS_DIR = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana chooses the window from the scrape interval; every rate below uses it.
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    targets: list[tuple[str, str]]  # (PromQL, legend format)
    description: str = ""
    kind: str = "timeseries"


def p95(metric: str, by: str, selector: str = "") -> str:
    return f"histogram_quantile(0.95, sum by (le, {by}) (rate({metric}_bucket{selector}[{RATE}])))"


def p50(metric: str, by: str, selector: str = "") -> str:
    return f"histogram_quantile(0.5, sum by (le, {by}) (rate({metric}_bucket{selector}[{RATE}])))"


def p50_and_p95(metric: str, by: str) -> list[tuple[str, str]]:
    """A latency panel's two targets, one series per ``by`` value and quantile."""
    legend = f"{{{{{by}}}}}"
    return [(p50(metric, by), f"{legend} p50"), (p95(metric, by), f"{legend} p95")]


def rate(metric: str, by: str, selector: str = "") -> str:
    return f"sum by ({by}) (rate({metric}{selector}[{RATE}]))"


# The dev server runs SDK workers of its own (system workflows) that report under job="temporal".
WORKERS = '{job!="temporal"}'

# Dashboard variables narrow every query: job and build_id (every series of the project's
# processes; workerkit labels versioned workers' series with their build id), and the SDK's own
# namespace and task_queue on temporal_* series. Their "All" is ".*", which also matches a
# series without the label, so a panel whose series lack one still shows data.
SCOPE = 'job=~"$job", build_id=~"$build_id"'
SDK_SCOPE = 'namespace=~"$namespace", task_queue=~"$task_queue"'
GROUPING = re.compile(r"(\b(?:by|without)\s*\([^)]*\))")
SERIES = re.compile(r"\b((?:temporal|agent|business|retrieval|codec|nexus)_[a-z0-9_]+)(?:\{([^}]*)\})?(?=\s*[\[)])")


def scoped(expr: str) -> str:
    """``expr`` with the dashboard variables' matchers in every series selector."""

    def narrow(match: re.Match[str]) -> str:
        metric, own = match.group(1), match.group(2)
        matchers = [m for m in (own, SCOPE, SDK_SCOPE if metric.startswith("temporal_") else "") if m]
        return f"{metric}{{{', '.join(matchers)}}}"

    # Label names in a grouping ("by (le, nexus_endpoint)") look like series names: leave them.
    parts = GROUPING.split(expr)
    return "".join(part if GROUPING.fullmatch(part) else SERIES.sub(narrow, part) for part in parts)


# (variable, label, the series its values are read from, what the picker is called)
VARIABLES = [
    ("job", "job", "up", "Job"),
    ("namespace", "namespace", "temporal_request_total", "Temporal namespace"),
    ("task_queue", "task_queue", 'temporal_worker_task_slots_available{namespace=~"$namespace"}', "Task queue"),
    ("build_id", "build_id", "temporal_worker_task_slots_available", "Build id"),
]


def variable_json(name: str, label: str, series: str, title: str) -> dict:
    query = f"label_values({series}, {label})"
    return {
        "name": name,
        "label": title,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
    }


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel] = field(default_factory=list)


DASHBOARDS = [
    Dashboard(
        "durable-agents-overview",
        "Durable agents / Agent overview",
        "Conversations, model calls (latency, tokens, cost), tool calls, approvals, refunds and ingestion.",
        [
            Panel("Active conversations", "short", [("sum(agent_conversations_active)", "conversations")], kind="stat"),
            Panel("Approvals waiting", "short", [("sum(agent_approvals_waiting)", "waiting")], kind="stat"),
            Panel(
                "Workflow completions",
                "ops",
                [
                    (
                        rate("temporal_workflow_completed_total", "namespace, workflow_type", WORKERS),
                        "{{workflow_type}} completed",
                    ),
                ],
            ),
            Panel(
                "Workflow failures",
                "ops",
                [
                    (
                        rate("temporal_workflow_failed_total", "namespace, workflow_type", WORKERS),
                        "{{workflow_type}} failed",
                    ),
                ],
                "Runs that ended failed (alert WorkflowFailureRateHigh).",
            ),
            Panel(
                "Model requests by outcome",
                "reqps",
                [
                    (rate("agent_model_requests_total", "model, outcome"), "{{model}} {{outcome}}"),
                ],
                "One per activity attempt; rate_limited is a 429 (alert ModelRateLimited).",
            ),
            Panel("Model request latency", "s", p50_and_p95("agent_model_request_duration_seconds", "model")),
            Panel(
                "Tokens",
                "short",
                [(rate("agent_model_tokens_total", "model, kind"), "{{model}} {{kind}}")],
                "Tokens per second the provider reported.",
            ),
            Panel(
                "Estimated cost per hour",
                "currencyUSD",
                [
                    ("sum by (model) (rate(agent_model_cost_usd_sum[$__rate_interval])) * 3600", "{{model}}"),
                ],
                "From the price table in agent/llm/metrics.py.",
            ),
            Panel("Tool calls", "ops", [(rate("agent_tool_calls_total", "tool, outcome"), "{{tool}} {{outcome}}")]),
            Panel("Approval decisions", "ops", [(rate("agent_approval_decisions_total", "decision"), "{{decision}}")]),
            Panel("Approval wait", "s", [(p95("agent_approval_wait_seconds", "decision"), "{{decision}} p95")]),
            Panel("Refunds", "ops", [(rate("business_refunds_total", "outcome"), "{{outcome}}")]),
            Panel(
                "Guardrail refusals",
                "ops",
                [
                    (rate("agent_guardrail_refusals_total", "rule"), "agent: {{rule}}"),
                    (
                        rate("business_access_refusals_total", "operation"),
                        "business: {{operation}} of another customer",
                    ),
                ],
                "What the model asked and rules held in code refused (docs/threat-model.md).",
            ),
            Panel(
                "Ingestion",
                "ops",
                [
                    (rate("agent_ingest_documents_total", "outcome"), "documents {{outcome}}"),
                    ("sum(rate(agent_ingest_chunks_total[$__rate_interval]))", "chunks"),
                ],
            ),
            Panel(
                "Embedding requests",
                "reqps",
                [
                    (rate("agent_embedding_requests_total", "model, outcome"), "{{model}} {{outcome}}"),
                ],
            ),
            Panel(
                "S3 blob store requests",
                "reqps",
                [(rate("agent_blob_store_requests_total", "operation, outcome"), "{{operation}} {{outcome}}")],
                "Only with AGENT_BLOB_STORE=s3; unavailable: endpoint unreachable, credentials refused or no "
                "such bucket (alert BlobStoreUnavailable). The directory store reports nothing here.",
            ),
            Panel(
                "S3 blob store request latency",
                "s",
                p50_and_p95("agent_blob_store_request_duration_seconds", "operation"),
                "Wall time of each S3 request as the agent worker saw it, retries of the client included.",
            ),
            Panel(
                "Paid answers not kept",
                "short",
                [("sum by (job) (increase(agent_paid_answers_unkept_total[$__rate_interval]))", "{{job}}")],
                "Provider answers paid for that the blob store could not keep; each one is paid again "
                "if its completion is also lost (alert PaidAnswersNotKept).",
            ),
        ],
    ),
    Dashboard(
        "durable-agents-workers",
        "Durable agents / Workers",
        "Temporal SDK worker health for the Python and Go workers: slots, schedule-to-start, polls, sticky cache.",
        [
            Panel("Workers up", "short", [("up", "{{job}}")], "1 when Prometheus scrapes the job (alert WorkerDown)."),
            Panel(
                "Task slots available",
                "short",
                [
                    (
                        "sum by (job, task_queue, worker_type) (temporal_worker_task_slots_available" + WORKERS + ")",
                        "{{job}} {{task_queue}} {{worker_type}}",
                    ),
                ],
                "0 for minutes: alert WorkerTaskSlotsExhausted.",
            ),
            Panel(
                "Task slots used",
                "short",
                [
                    (
                        "sum by (job, task_queue, worker_type) (temporal_worker_task_slots_used" + WORKERS + ")",
                        "{{job}} {{task_queue}} {{worker_type}}",
                    ),
                ],
            ),
            Panel(
                "Workflow task schedule-to-start (p95)",
                "s",
                [
                    (
                        p95(
                            "temporal_workflow_task_schedule_to_start_latency_seconds", "namespace, task_queue", WORKERS
                        ),
                        "{{namespace}}/{{task_queue}}",
                    ),
                ],
                "Time tasks wait for a worker (alert WorkflowTaskScheduleToStartHigh).",
            ),
            Panel(
                "Activity schedule-to-start (p95, Python workers)",
                "s",
                [
                    (
                        p95("temporal_activity_schedule_to_start_latency_seconds", "task_queue", WORKERS),
                        "{{task_queue}}",
                    ),
                ],
            ),
            Panel(
                "Workflow task execution (p95)",
                "s",
                [
                    (
                        p95("temporal_workflow_task_execution_latency_seconds", "job, workflow_type", WORKERS),
                        "{{job}} {{workflow_type}}",
                    ),
                ],
            ),
            Panel(
                "Activity execution (p95)",
                "s",
                [
                    (
                        p95("temporal_activity_execution_latency_seconds", "job, activity_type", WORKERS),
                        "{{job}} {{activity_type}}",
                    ),
                ],
            ),
            Panel(
                "Workflow task polls",
                "ops",
                [
                    (rate("temporal_workflow_task_queue_poll_succeed_total", "job", WORKERS), "{{job}} got a task"),
                    (rate("temporal_workflow_task_queue_poll_empty_total", "job", WORKERS), "{{job}} empty"),
                ],
            ),
            Panel(
                "Activity polls without a task",
                "ops",
                [
                    (rate("temporal_activity_poll_no_task_total", "job", WORKERS), "{{job}}"),
                ],
            ),
            Panel(
                "Pollers",
                "short",
                [
                    ("sum by (job, poller_type) (temporal_num_pollers" + WORKERS + ")", "{{job}} {{poller_type}}"),
                ],
            ),
            Panel(
                "Sticky cache size",
                "short",
                [
                    ("sum by (job) (temporal_sticky_cache_size" + WORKERS + ")", "{{job}}"),
                ],
            ),
            Panel(
                "Sticky cache hits and replays",
                "ops",
                [
                    (rate("temporal_sticky_cache_hit_total", "job", WORKERS), "{{job}} hits"),
                    (
                        rate("temporal_workflow_task_replay_latency_seconds_count", "job", WORKERS),
                        "{{job}} replays (misses)",
                    ),
                ],
                "A replay means the workflow was not cached: after restarts or evictions.",
            ),
            Panel(
                "Requests to the Temporal server",
                "reqps",
                [
                    (rate("temporal_request_total", "job, operation", WORKERS), "{{job}} {{operation}}"),
                    (rate("temporal_request_failure_total", "job, operation", WORKERS), "{{job}} {{operation}} failed"),
                ],
            ),
        ],
    ),
    Dashboard(
        "durable-agents-nexus",
        "Durable agents / Nexus",
        "Nexus operations between the agent (caller) and the business and retrieval workers (handlers).",
        [
            Panel(
                "Caller: outbound requests by endpoint",
                "reqps",
                [
                    (
                        rate("nexus_outbound_requests", "destination, method, outcome"),
                        "{{destination}} {{method}} {{outcome}}",
                    ),
                ],
                "From the Temporal server (history service): what the caller's namespace sent to each endpoint.",
            ),
            Panel(
                "Caller: outbound request errors",
                "reqps",
                [
                    (
                        rate(
                            "nexus_outbound_requests", "destination, method, outcome", '{outcome!~"successful|pending"}'
                        ),
                        "{{destination}} {{method}} {{outcome}}",
                    ),
                ],
                "Requests to a handler that failed or timed out (alert NexusOperationErrors on the handler side).",
            ),
            Panel(
                "Caller: outbound latency (p95)",
                "s",
                [
                    (p95("nexus_outbound_latency", "destination, method"), "{{destination}} {{method}}"),
                ],
            ),
            Panel(
                "Caller: operations completed by endpoint",
                "ops",
                [
                    (
                        rate("nexus_operation_success", "nexus_endpoint, workflowType"),
                        "{{nexus_endpoint}} from {{workflowType}}",
                    ),
                ],
            ),
            Panel(
                "Caller: operation schedule-to-close (p95)",
                "s",
                [
                    (p95("nexus_operation_schedule_to_close_latency", "nexus_endpoint"), "{{nexus_endpoint}}"),
                ],
            ),
            Panel(
                "Handler: calls by operation",
                "ops",
                [
                    (
                        rate("nexus_handler_operations_total", "job, nexus_service, nexus_operation, outcome"),
                        "{{nexus_service}}/{{nexus_operation}} {{outcome}}",
                    ),
                ],
                "Every handler call, Python and Go alike (workerkit.nexus_metrics, app/metrics/nexus.go).",
            ),
            Panel(
                "Handler: errors by operation",
                "ops",
                [
                    (
                        rate(
                            "nexus_handler_operations_total",
                            "job, nexus_service, nexus_operation, outcome",
                            '{outcome!="ok"}',
                        ),
                        "{{nexus_service}}/{{nexus_operation}} {{outcome}}",
                    ),
                ],
                "bad_request and not_found are the caller's mistakes (the model recovers); internal and "
                "unavailable are the handler's (alert NexusOperationErrors).",
            ),
            Panel(
                "Handler: latency by operation (p95)",
                "s",
                [
                    (
                        p95("nexus_handler_operation_latency_seconds", "job, nexus_service, nexus_operation"),
                        "{{nexus_service}}/{{nexus_operation}}",
                    ),
                ],
                "Until the handler answered; for a workflow-run operation (refund, index), until its workflow started.",
            ),
            Panel(
                "Handler: schedule-to-start (p95)",
                "s",
                [
                    (
                        p95("temporal_nexus_task_schedule_to_start_latency_seconds", "job, task_queue", WORKERS),
                        "{{job}} {{task_queue}}",
                    ),
                ],
            ),
            Panel(
                "Handler: tasks handled",
                "ops",
                [
                    (
                        rate("temporal_nexus_task_endtoend_latency_seconds_count", "job, task_queue", WORKERS),
                        "{{job}} {{task_queue}}",
                    ),
                ],
            ),
            Panel(
                "Handler: task failures",
                "ops",
                [
                    (
                        rate("temporal_nexus_task_execution_failed_total", "job, task_queue", WORKERS),
                        "{{job}} {{task_queue}}",
                    ),
                ],
                "Alert NexusOperationErrors.",
            ),
        ],
    ),
    Dashboard(
        "durable-agents-retrieval",
        "Durable agents / Retrieval",
        "The Go retrieval worker: search latency and errors, index size.",
        [
            Panel(
                "Searches by mode and outcome",
                "reqps",
                [
                    (rate("retrieval_search_duration_seconds_count", "mode, outcome"), "{{mode}} {{outcome}}"),
                ],
            ),
            Panel("Search latency", "s", p50_and_p95("retrieval_search_duration_seconds", "mode")),
            Panel(
                "Retrieval errors",
                "ops",
                [
                    (rate("retrieval_errors_total", "operation, kind"), "{{operation}} {{kind}}"),
                ],
            ),
            Panel("Indexed documents", "short", [("sum by (instance) (retrieval_index_documents)", "{{instance}}")]),
            Panel("Index size", "bytes", [("sum by (instance) (retrieval_index_bytes)", "{{instance}}")]),
        ],
    ),
    Dashboard(
        "durable-agents-codec",
        "Durable agents / Codec and codec server",
        "Payload encryption in every process (codec_*) and the codec server the Temporal UI calls.",
        [
            Panel(
                "Payloads by process",
                "ops",
                [
                    (rate("codec_payloads_total", "job, operation, outcome"), "{{job}} {{operation}} {{outcome}}"),
                ],
            ),
            Panel(
                "Payload bytes",
                "Bps",
                [
                    (rate("codec_payload_bytes_total", "job, operation"), "{{job}} {{operation}}"),
                ],
            ),
            Panel(
                "Codec failures",
                "ops",
                [
                    (
                        rate("codec_failures_total", "job, operation, key_id, reason"),
                        "{{job}} {{operation}} {{reason}} ({{key_id}})",
                    ),
                ],
                "Decode failures: alert CodecDecodeFailures (see ops/runbooks/key-rotation.md).",
            ),
            Panel(
                "Codec server requests",
                "reqps",
                [
                    (rate("codec_server_requests_total", "operation, outcome"), "{{operation}} {{outcome}}"),
                ],
            ),
            Panel(
                "Codec server latency (p95)",
                "s",
                [
                    (p95("codec_server_request_duration_seconds", "operation"), "{{operation}}"),
                ],
            ),
            Panel(
                "Codec server auth failures",
                "reqps",
                [
                    (rate("codec_server_auth_failures_total", "reason"), "{{reason}}"),
                ],
                "Alert CodecServerAuthFailuresSpike.",
            ),
        ],
    ),
]


NOT_OK = '{outcome!="ok"}'

DASHBOARDS.append(
    Dashboard(
        "durable-agents-rollout",
        "Durable agents / Rollout by build id",
        "Versions side by side during a rollout (ops/runbooks/rollout.md): work, errors and latency per build_id.",
        [
            Panel(
                "Workflows completed per build id",
                "ops",
                [(rate("temporal_workflow_completed_total", "build_id", WORKERS), "{{build_id}}")],
                "Where new and pinned workflows finish: a ramping version's share grows, a draining one's falls to 0.",
            ),
            Panel(
                "Workflow failure ratio per build id",
                "percentunit",
                [
                    (
                        f"{rate('temporal_workflow_failed_total', 'build_id', WORKERS)} / ("
                        f"{rate('temporal_workflow_completed_total', 'build_id', WORKERS)} + "
                        f"{rate('temporal_workflow_failed_total', 'build_id', WORKERS)})",
                        "{{build_id}}",
                    )
                ],
                "Failed of closed runs: compare the new version with the current one before promoting it.",
            ),
            Panel(
                "Provider errors per build id",
                "reqps",
                [
                    (
                        f"{rate('agent_model_requests_total', 'build_id, outcome', NOT_OK)} or "
                        f"{rate('agent_embedding_requests_total', 'build_id, outcome', NOT_OK)}",
                        "{{build_id}} {{outcome}}",
                    )
                ],
                "Model and embedding requests that did not answer ok (429s, 5xx, timeouts), per version.",
            ),
            Panel(
                "Workflow task latency per build id (p95)",
                "s",
                [(p95("temporal_workflow_task_execution_latency_seconds", "build_id", WORKERS), "{{build_id}}")],
            ),
            Panel(
                "Activity latency per build id (p95)",
                "s",
                [(p95("temporal_activity_execution_latency_seconds", "build_id", WORKERS), "{{build_id}}")],
            ),
            Panel(
                "Model request latency per build id (p95)",
                "s",
                [(p95("agent_model_request_duration_seconds", "build_id"), "{{build_id}}")],
            ),
            Panel(
                "Task slots in use per build id",
                "short",
                [
                    (
                        f"sum by (build_id, worker_type) (temporal_worker_task_slots_used{WORKERS})",
                        "{{build_id}} {{worker_type}}",
                    )
                ],
                "Work each version holds right now; a retired version must read 0 before its pods go.",
            ),
        ],
    )
)


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    width, height = (6, 4) if panel.kind == "stat" else (12, 8)
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
        if panel.kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"]}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": scoped(expr), "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.targets)
        ],
    }


def dashboard_json(dashboard: Dashboard) -> dict:
    panels, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        rendered = panel_json(panel, panel_id, x, y)
        width, height = rendered["gridPos"]["w"], rendered["gridPos"]["h"]
        if x + width > 24:
            x, y = 0, y + row_height
            rendered["gridPos"].update(x=x, y=y)
            row_height = 0
        panels.append(rendered)
        x, row_height = x + width, max(row_height, height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["durable-agents", "temporal"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                },
                *(variable_json(*v) for v in VARIABLES),
            ]
        },
        "panels": panels,
    }


def rendered() -> dict[str, str]:
    """file name -> JSON text, as the repository holds it."""
    return {
        f"{d.uid.removeprefix('durable-agents-')}.json": json.dumps(dashboard_json(d), indent=2) + "\n"
        for d in DASHBOARDS
    }


def configmap(name: str, text: str) -> str:
    """A ConfigMap the Grafana sidecar picks up (label grafana_dashboard: "1")."""
    indented = "\n".join("    " + line if line else "" for line in text.splitlines())
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        f"  name: grafana-dashboard-{name.removesuffix('.json')}\n"
        '  labels:\n    grafana_dashboard: "1"\n'
        f"data:\n  {name}: |-\n{indented}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configmaps", type=Path, help="also write one sidecar ConfigMap per dashboard here")
    args = parser.parse_args(argv)
    DASHBOARDS_DIR.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (DASHBOARDS_DIR / name).write_text(text)
        if args.configmaps:
            args.configmaps.mkdir(parents=True, exist_ok=True)
            (args.configmaps / f"{name.removesuffix('.json')}.yaml").write_text(configmap(name, text))
    print(f"wrote {len(DASHBOARDS)} dashboards to {DASHBOARDS_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
