"""The agent's own metrics: names, bounded label values, the model price table and the gauges.

Every name here is listed in ``ops/metrics/catalogue.yaml``. Metrics are recorded through
Temporal's meters, so they come out of the worker's one ``/metrics`` endpoint with the SDK's:
activity-side values through ``activity.metric_meter()``, workflow-side ones through
``workflow.metric_meter()`` (which records nothing while a workflow replays, so a restarted
worker does not count a decision twice), and the visibility gauges through the process meter.

Label values are bounded: model names come from configuration, outcomes and tools from the
fixed sets below; no ids, no customer text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import MetricCounter, SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from agent.embeddings.types import EmbeddingErrorType
from agent.llm.settings import SIMULATOR_MODEL
from agent.llm.types import ModelErrorType
from agent.tools import SUPPORT_TOOLS
from workerkit.errors import ConfigError
from workerkit.metrics import process_meter
from workerkit.settings import seconds_setting

log = logging.getLogger(__name__)

# ---- names (as created; the exporter adds _total to counters and _seconds to durations) ----

MODEL_REQUESTS = "agent_model_requests"
MODEL_REQUEST_DURATION = "agent_model_request_duration"
MODEL_TOKENS = "agent_model_tokens"
MODEL_COST = "agent_model_cost_usd"
EMBEDDING_REQUESTS = "agent_embedding_requests"
PAID_ANSWERS_REUSED = "agent_paid_answers_reused"
PAID_ANSWERS_UNKEPT = "agent_paid_answers_unkept"
GUARDRAIL_REFUSALS = "agent_guardrail_refusals"
EMBEDDING_TEXTS = "agent_embedding_texts"
TOOL_CALLS = "agent_tool_calls"
APPROVALS_REQUESTED = "agent_approvals_requested"
APPROVAL_DECISIONS = "agent_approval_decisions"
APPROVAL_WAIT = "agent_approval_wait"
BLOB_STORE_REQUESTS = "agent_blob_store_requests"
BLOB_STORE_REQUEST_DURATION = "agent_blob_store_request_duration"
CONVERSATIONS_ACTIVE = "agent_conversations_active"
APPROVALS_WAITING = "agent_approvals_waiting"

# ---- label values ----

OK = "ok"
OTHER = "other"
ERROR = "error"
UNKNOWN_TOOL = "unknown"
_OUTCOMES = {
    ModelErrorType.RATE_LIMITED: "rate_limited",
    ModelErrorType.SERVER_ERROR: "server_error",
    ModelErrorType.TIMEOUT: "timeout",
    ModelErrorType.CONNECTION: "connection_error",
    ModelErrorType.BAD_REQUEST: "bad_request",
    ModelErrorType.CONTEXT_LENGTH: "context_length",
    ModelErrorType.AUTH: "auth",
    ModelErrorType.NOT_FOUND: "not_found",
    ModelErrorType.QUOTA: "quota",
    EmbeddingErrorType.MALFORMED_RESPONSE: "server_error",
    EmbeddingErrorType.INVALID_INPUT: "bad_request",
}
TOOLS = frozenset(t["function"]["name"] for t in SUPPORT_TOOLS)
# How approvals end (``agent_approval_decisions_total{decision}``).
APPROVED, REJECTED, EXPIRED, ENDED = "approved", "rejected", "expired", "ended"

# The search attribute the support workflow keeps equal to its number of pending approvals;
# registered by the dev stack (devstack.temporal_setup) and, in clusters, by the operator.
PENDING_APPROVALS = SearchAttributeKey.for_int("AgentPendingApprovals")


def outcome_of(error_type: str | None) -> str:
    """The ``outcome`` label of a model or embedding request from its classified error type."""
    if error_type is None:
        return OK
    return _OUTCOMES.get(error_type, OTHER)


# ---- the price table ----

ENV_PRICES = "AGENT_MODEL_PRICES"

# US dollars per million tokens (prompt, completion), list prices of the providers' public price
# pages; a deployment with other prices or models sets AGENT_MODEL_PRICES. The simulator's price
# is nominal, not a real price, so that the cost panels of a demo have data.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    SIMULATOR_MODEL: (1.00, 2.00),
}


class PriceTableError(ConfigError):
    """AGENT_MODEL_PRICES is not a JSON object of model -> [prompt, completion] USD per 1M tokens."""


def model_prices(environ: Mapping[str, str] = os.environ) -> dict[str, tuple[float, float]]:
    """The default table with ``AGENT_MODEL_PRICES`` (JSON, e.g. ``{"my-model": [0.5, 1.5]}``) over it."""
    raw = environ.get(ENV_PRICES, "").strip()
    prices = dict(DEFAULT_PRICES)
    if not raw:
        return prices
    try:
        table = json.loads(raw)
        for model, pair in table.items():
            prompt, completion = (float(x) for x in pair)
            if prompt < 0 or completion < 0 or len(pair) != 2:
                raise ValueError
            prices[str(model)] = (prompt, completion)
    except (ValueError, TypeError, AttributeError):
        raise PriceTableError(
            f'{ENV_PRICES} must be a JSON object like {{"gpt-4o-mini": [0.15, 0.60]}} '
            "(US dollars per million prompt and completion tokens)"
        ) from None
    return prices


def cost_usd(prices: Mapping[str, tuple[float, float]], model: str, prompt: int, completion: int) -> float | None:
    """Estimated cost of one request; None for a model without a price (nothing is recorded)."""
    price = prices.get(model)
    if price is None:
        return None
    return (prompt * price[0] + completion * price[1]) / 1_000_000


# ---- recording ----


@dataclass(frozen=True)
class ModelCall:
    """What one model request did, for :func:`record_model_call`."""

    model: str
    duration: timedelta
    error_type: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def record_model_call(call: ModelCall, prices: Mapping[str, tuple[float, float]]) -> None:
    """From inside the chat activity."""
    meter = activity.metric_meter()
    labels = {"model": call.model, "outcome": outcome_of(call.error_type)}
    meter.create_counter(MODEL_REQUESTS, "Model requests by model and outcome.").add(1, labels)
    meter.create_histogram_timedelta(MODEL_REQUEST_DURATION, "Model request wall time.").record(call.duration, labels)
    if call.error_type is not None:
        return
    tokens = meter.create_counter(MODEL_TOKENS, "Tokens reported by the provider.")
    tokens.add(call.prompt_tokens, {"model": call.model, "kind": "prompt"})
    tokens.add(call.completion_tokens, {"model": call.model, "kind": "completion"})
    cost = cost_usd(prices, call.model, call.prompt_tokens, call.completion_tokens)
    if cost is not None:
        meter.create_histogram_float(MODEL_COST, "Estimated cost of a model request in USD.").record(
            cost, {"model": call.model}
        )


def record_embedding_call(model: str, texts: int, error_type: str | None) -> None:
    """From inside the embedding activity: one call of ``embed_texts`` (all its batches)."""
    meter = activity.metric_meter()
    meter.create_counter(EMBEDDING_REQUESTS, "Embedding requests by model and outcome.").add(
        1, {"model": model, "outcome": outcome_of(error_type)}
    )
    if error_type is None:
        meter.create_counter(EMBEDDING_TEXTS, "Texts embedded.").add(texts, {"model": model})


def record_paid_answer_reused(kind: str) -> None:
    """From inside a model or embedding activity that returned a kept answer instead of paying."""
    activity.metric_meter().create_counter(
        PAID_ANSWERS_REUSED, "Provider answers returned from the kept answer of an earlier attempt."
    ).add(1, {"kind": kind})


def _paid_answers_unkept() -> MetricCounter:
    # The process meter: keeping an answer fails the same way inside and outside activities.
    return process_meter().create_counter(
        PAID_ANSWERS_UNKEPT, "Provider answers already paid for that the blob store could not keep."
    )


def expose_paid_answers_unkept() -> None:
    """At the start of a process that pays providers: the counter at 0. A series born at 1 shows
    no increase to Prometheus, so without this the first answer not kept would not alert."""
    _paid_answers_unkept().add(0)


def record_paid_answer_unkept() -> None:
    """A provider answer, already paid, that the store could not keep. Until the store is back, a
    lost completion of that attempt pays the provider again: this is what an operator alerts on."""
    _paid_answers_unkept().add(1)


def record_blob_store_request(operation: str, outcome: str, duration: timedelta) -> None:
    """From the S3 blob store, wherever it runs (activities, the worker's start): the process meter."""
    meter = process_meter()
    labels = {"operation": operation, "outcome": outcome}
    meter.create_counter(BLOB_STORE_REQUESTS, "S3 blob store requests by operation and outcome.").add(1, labels)
    meter.create_histogram_timedelta(BLOB_STORE_REQUEST_DURATION, "S3 blob store request wall time.").record(
        duration, labels
    )


def record_guardrail_refusal(rule: str) -> None:
    """From workflow code: a rule held in code refused what the model asked (not on replay)."""
    workflow.metric_meter().create_counter(
        GUARDRAIL_REFUSALS, "Model requests refused by a rule held in code, by rule."
    ).add(1, {"rule": rule})


def record_tool_call(tool: str, failed: bool) -> None:
    """From workflow code, once the tool's outcome is known."""
    workflow.metric_meter().create_counter(TOOL_CALLS, "Tool calls by tool and outcome.").add(
        1, {"tool": tool if tool in TOOLS else UNKNOWN_TOOL, "outcome": ERROR if failed else OK}
    )


def record_approval_requested() -> None:
    workflow.metric_meter().create_counter(APPROVALS_REQUESTED, "Approvals requested.").add(1)


def record_approval_decided(decision: str, waited: timedelta) -> None:
    meter = workflow.metric_meter()
    labels = {"decision": decision}
    meter.create_counter(APPROVAL_DECISIONS, "How approvals ended.").add(1, labels)
    meter.create_histogram_timedelta(APPROVAL_WAIT, "Workflow time an approval waited.").record(
        max(waited, timedelta(0)), labels
    )


async def require_search_attribute(client: Client) -> None:
    """Refuse to start when ``AgentPendingApprovals`` is not registered: every conversation's
    workflow tasks would fail on it. A server that does not let workers list attributes (Temporal
    Cloud API keys often cannot) is trusted, with a warning."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status not in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            raise
        log.warning("cannot check that search attribute %s is registered: %s", PENDING_APPROVALS.name, err.message)
        return
    if listed.custom_attributes.get(PENDING_APPROVALS.name) != IndexedValueType.INDEXED_VALUE_TYPE_INT:
        raise ConfigError(
            f"search attribute {PENDING_APPROVALS.name} (Int) is not registered in namespace {client.namespace}; "
            f"register it with `temporal operator search-attribute create --namespace {client.namespace} "
            f"--name {PENDING_APPROVALS.name} --type Int` (make up does this)"
        )


# ---- gauges from visibility ----

ENV_GAUGE_INTERVAL = "AGENT_GAUGE_INTERVAL_S"


def gauge_interval(environ: Mapping[str, str] = os.environ) -> float:
    return seconds_setting(ENV_GAUGE_INTERVAL, 10, env=environ)


_RUNNING = 'WorkflowType = "SupportAgentWorkflow" AND ExecutionStatus = "Running"'


async def visibility_gauges(client: Client) -> None:
    """Keep ``agent_conversations_active`` and ``agent_approvals_waiting`` current.

    Counted from Temporal visibility rather than kept in memory, so the numbers stay right
    across worker restarts and with any number of workers (each reports the same value).
    """
    interval = gauge_interval()
    meter = process_meter()
    active = meter.create_gauge(CONVERSATIONS_ACTIVE, "Running support conversations.")
    waiting = meter.create_gauge(APPROVALS_WAITING, "Approvals waiting for a decision.")
    while True:
        try:
            active.set((await client.count_workflows(_RUNNING)).count)
            total = 0
            query = f"{_RUNNING} AND {PENDING_APPROVALS.name} > 0"
            async for execution in client.list_workflows(query, page_size=1000):
                total += execution.typed_search_attributes.get(PENDING_APPROVALS) or 0
            waiting.set(total)
        except Exception as err:  # a visibility hiccup must not stop the worker
            log.warning("cannot refresh the conversation gauges from visibility: %s", err)
        await asyncio.sleep(interval)
