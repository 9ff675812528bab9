"""Fast tests of the agent's workflows: Temporal's time-skipping test server, everything else in
this process.

The workflows run on real workers in this process against Temporal's own test server (its Java
build, started once per session; see ``tests/temporal-test-server``), so timers of hours pass in
milliseconds. What the workflows call is here too, by the names they call it:

- the business service: the real handler, workflow and activity (``business.worker.build_worker``)
  over a fresh SQLite file, so ownership, refund keys and tickets behave as in production;
- the retrieval service: :class:`MemoryRetrieval`, an in-memory handler of the real contract;
- model calls: :class:`ScriptedModel`, answers the test writes, by activity name
  (``chat_completion``, ``model_health``), with a record of every request;
- embeddings: deterministic vectors under the ``embed_texts`` name;
- blobs, transcripts and ingestion's file reads: the real activities over a temporary directory.

No dev server, no worker process, no model server: the integration tests prove those; these
prove the workflows' logic, in seconds.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from agent_doubles import Agents, HashEmbeddings, MemoryRetrieval, ScriptedModel
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, CreateNexusEndpointRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from agent.blobs.activities import BlobActivities
from agent.blobs.store import LocalBlobStore
from agent.ingest.activities import IngestActivities
from agent.metrics import PENDING_APPROVALS
from agent.queues import AGENT_TASK_QUEUE, EMBED_TASK_QUEUE, LLM_TASK_QUEUE
from agent.support.activities import SupportActivities
from agent.worker import WORKFLOWS
from business.store import SqliteStore
from business.worker import build_worker as build_business_worker

REPO = Path(__file__).resolve().parents[4]
TEST_SERVER = Path(os.environ.get("TEMPORAL_TEST_SERVER", REPO / "tests" / "temporal-test-server" / "run"))
RETRIEVAL_QUEUE = "retrieval-in-process"
BUSINESS_QUEUE = "business-in-process"


def _require_test_server() -> None:
    if not TEST_SERVER.exists() or not (REPO / ".tools" / "temporal-test-server" / "lib").is_dir():
        pytest.fail("Temporal's test server is not installed: run 'make test-server' (make test does)", pytrace=False)


async def _endpoint(client: Client, name: str, task_queue: str) -> None:
    target = EndpointTarget(worker=EndpointTarget.Worker(namespace=client.namespace, task_queue=task_queue))
    await client.operator_service.create_nexus_endpoint(
        CreateNexusEndpointRequest(spec=EndpointSpec(name=name, target=target))
    )


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agent-workflows")


@pytest.fixture(scope="session")
async def session_agents(scratch: Path) -> AsyncIterator[Agents]:
    _require_test_server()
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER))
    client = env.client
    blobs = LocalBlobStore(scratch / "blobs")
    model, retrieval = ScriptedModel(), MemoryRetrieval()
    store = SqliteStore(scratch / "business.db")
    # What `make up` registers: conversations keep their pending approvals in it.
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={PENDING_APPROVALS.name: IndexedValueType.INDEXED_VALUE_TYPE_INT},
        )
    )
    await _endpoint(client, "retrieval", RETRIEVAL_QUEUE)
    await _endpoint(client, "business", BUSINESS_QUEUE)
    workers = [
        Worker(
            client,
            task_queue=AGENT_TASK_QUEUE,
            workflows=WORKFLOWS,
            activities=[
                BlobActivities(blobs).store_text,
                SupportActivities(blobs).archive_transcript,
                *IngestActivities(blobs, client).all(),
            ],
        ),
        Worker(client, task_queue=LLM_TASK_QUEUE, activities=[model.chat_completion, model.model_health]),
        Worker(client, task_queue=EMBED_TASK_QUEUE, activities=[HashEmbeddings(blobs).embed_texts]),
        Worker(client, task_queue=RETRIEVAL_QUEUE, nexus_service_handlers=[retrieval]),
        build_business_worker(client, store, BUSINESS_QUEUE),
    ]
    async with AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        yield Agents(env, model, retrieval, store, blobs)
    store.close()
    await env.shutdown()


@pytest.fixture
def agents(session_agents: Agents) -> Iterator[Agents]:
    """The session's workflows with a fresh model script for this test."""
    session_agents.model.reset()
    yield session_agents
