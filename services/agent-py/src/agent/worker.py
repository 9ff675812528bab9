"""Agent worker process: workflows on ``agent``, model calls on ``llm``, embeddings on ``embed``.

Run with ``python -m agent.worker``. Both pools live in one process on a dev stack; in a
cluster the Helm chart can run them as separate deployments with the same entry point
(``AGENT_WORKER_QUEUES=agent``, ``=llm`` or ``=embed``). Both need the blob store (``AGENT_BLOB_DIR``,
or a shared bucket: ``AGENT_BLOB_STORE=s3``, see ``agent.blobs.settings``): workflows write large
texts to it through local activities, model calls read them back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from temporalio.client import Client
from temporalio.worker import Worker

from agent.blobs.activities import BlobActivities
from agent.blobs.s3 import S3BlobStore
from agent.blobs.settings import blob_store_from_env
from agent.blobs.store import BlobStoreUnavailable
from agent.embeddings.activities import build_embedding_activities
from agent.external.activities import ExternalToolActivities
from agent.ingest.activities import IngestActivities
from agent.llm.activities import ModelActivities
from agent.llm.settings import ModelSettings
from agent.metrics import expose_paid_answers_unkept, gauge_interval, require_search_attribute, visibility_gauges
from agent.paid_calls import PatientCompletion, paid_answers_from
from agent.queues import AGENT_TASK_QUEUE, EMBED_TASK_QUEUE, LLM_TASK_QUEUE, MCP_TASK_QUEUE
from agent.support.activities import SupportActivities
from agent.workflows.ingest import IngestDocumentWorkflow, IngestWorkflow
from agent.workflows.support_agent import SupportAgentWorkflow
from agent.workflows.system_check import SystemCheckWorkflow
from agent.workflows.tool_call import RefundApprovalWorkflow, ToolCallWorkflow
from workerkit import ConfigError, run_workers
from workerkit.deployment import deployment_config
from workerkit.settings import positive_int_setting, rate_setting

log = logging.getLogger(__name__)

NAMESPACE = "agents"
WORKFLOWS = [
    SystemCheckWorkflow,
    SupportAgentWorkflow,
    IngestWorkflow,
    IngestDocumentWorkflow,
    ToolCallWorkflow,
    RefundApprovalWorkflow,
]


def _queues() -> set[str]:
    known = (AGENT_TASK_QUEUE, LLM_TASK_QUEUE, EMBED_TASK_QUEUE, MCP_TASK_QUEUE)
    raw = os.environ.get("AGENT_WORKER_QUEUES", ",".join(known))
    queues = {q.strip() for q in raw.split(",") if q.strip()}
    if queues - set(known) or not queues:
        raise ConfigError(f"AGENT_WORKER_QUEUES must list some of {', '.join(known)}, got {raw!r}")
    return queues


async def build_workers(client: Client) -> Sequence[Worker]:
    queues = _queues()
    # Blobs hold what history would otherwise hold, so they are sealed by the same codec.
    blobs = blob_store_from_env(client.data_converter.payload_codec)
    if isinstance(blobs, S3BlobStore):
        try:  # bad credentials or a missing bucket stop the start, in one sentence
            await blobs.check()
        except BlobStoreUnavailable as err:
            raise ConfigError(f"the blob store is unusable: {err}") from None
    log.info("blob store: %s (%s)", blobs, "sealed" if blobs.codec else "plain")
    # Paid provider answers are kept beside the blobs (directory or bucket), so a retry on another
    # pod finds them, until their activity can no longer retry.
    answers = paid_answers_from(blobs)
    log.info("paid answers: %s", answers.shelf)
    if queues & {LLM_TASK_QUEUE, EMBED_TASK_QUEUE}:  # the pools that pay providers
        expose_paid_answers_unkept()
    # Paid answers are reported with retries through a server outage (the SDK tries once).
    completion = PatientCompletion(client)
    # Every queue of the process polls as the same version, so a pinned conversation's model
    # calls and embeddings run on the build that started it.
    deployment = deployment_config()
    workers = []
    if AGENT_TASK_QUEUE in queues:
        gauge_interval()  # a bad setting stops the start, not the gauges later
        await require_search_attribute(client)
        workers.append(
            Worker(
                client,
                task_queue=AGENT_TASK_QUEUE,
                deployment_config=deployment,
                workflows=WORKFLOWS,
                # Local activities of the workflows: they write to the blob store from the
                # workflow worker, so their (large) inputs never enter history.
                # inspect/extract/read_chunks are ordinary activities of ingestion: file reads
                # that may take a while and must retry on their own.
                activities=[
                    BlobActivities(blobs).store_text,
                    SupportActivities(blobs).archive_transcript,
                    *IngestActivities(blobs, client).all(),
                ],
            )
        )
    if LLM_TASK_QUEUE in queues:
        model = ModelActivities(ModelSettings.from_env(), blobs, answers, completion)
        workers.append(
            Worker(
                client,
                task_queue=LLM_TASK_QUEUE,
                deployment_config=deployment,
                activities=[model.chat_completion, model.model_health],
                # Bounded so a burst of conversations cannot stampede the provider's rate limit.
                max_concurrent_activities=positive_int_setting("AGENT_LLM_CONCURRENCY", 16),
                # The provider's requests-per-second limit is the whole fleet's, so it is the task
                # queue's rate limit, enforced by the server across every pod and version: adding
                # replicas (autoscaling) never multiplies it.
                max_task_queue_activities_per_second=rate_setting("AGENT_LLM_QUEUE_RATE"),
            )
        )
    if EMBED_TASK_QUEUE in queues:
        embedding = build_embedding_activities(blobs, answers, completion)
        workers.append(
            Worker(
                client,
                task_queue=EMBED_TASK_QUEUE,
                deployment_config=deployment,
                activities=[embedding.embed_texts],
                # Embedding is compute-bound at the provider: a few concurrent batches saturate it.
                max_concurrent_activities=positive_int_setting("AGENT_EMBED_CONCURRENCY", 4),
            )
        )
    if MCP_TASK_QUEUE in queues:
        external = ExternalToolActivities()  # AGENT_MCP_SERVERS_FILE: a bad file stops the start
        workers.append(
            Worker(
                client,
                task_queue=MCP_TASK_QUEUE,
                deployment_config=deployment,
                activities=[external.discover, external.call],
                max_concurrent_activities=positive_int_setting("AGENT_MCP_CONCURRENCY", 16),
            )
        )
    return workers


async def _gauges(client: Client) -> None:
    # Only processes that serve the workflows count conversations (any one of them would do).
    if AGENT_TASK_QUEUE in _queues():
        await visibility_gauges(client)


def main() -> None:
    run_workers(
        "agent-worker",
        NAMESPACE,
        build_workers,
        port_env="AGENT_HEALTH_PORT",
        default_port=8403,
        metrics_port_env="AGENT_METRICS_PORT",
        default_metrics_port=8413,
        background=[_gauges],
    )


if __name__ == "__main__":
    main()
