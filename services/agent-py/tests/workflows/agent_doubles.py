"""Test doubles of what the agent's workflows call, by the names they call it (see conftest.py):
a scripted model, deterministic embeddings, an in-memory retrieval service of the real contract,
and :class:`Agents`, what a test drives and inspects."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import nexusrpc
import nexusrpc.handler
from temporalio import activity
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from agent.blobs.store import LocalBlobStore
from agent.chat.client import Conversations
from agent.embeddings.types import EMBED_TEXTS_ACTIVITY, EmbedRequest, EmbedResult
from agent.llm.types import CHAT_COMPLETION_ACTIVITY, MODEL_HEALTH_ACTIVITY, ChatRequest, ChatResult, ToolCall, Usage
from agent.support.types import ConversationSettings, ConversationStart
from business.store import Store
from nexus_contracts.business import RefundResult
from nexus_contracts.retrieval import (
    CollectionStats,
    DeleteRequest,
    DeleteResponse,
    IndexDocument,
    IndexRequest,
    IndexResponse,
    RetrievalService,
    SearchHit,
    SearchRequest,
    SearchResponse,
    StatsRequest,
    StatsResponse,
)

EMBED_DIMENSION = 8

# ---- the model ---------------------------------------------------------------------------------

Reply = ChatResult | ApplicationError
Responder = Callable[[ChatRequest], Reply]


def say(text: str, tokens: int = 10) -> ChatResult:
    """The model answers in words."""
    return ChatResult("scripted", text, [], "stop", Usage(tokens, tokens, 2 * tokens))


def use(name: str, tokens: int = 10, **arguments: object) -> ChatResult:
    """The model calls one tool."""
    call = ToolCall(f"call-{uuid.uuid4().hex[:8]}", name, json.dumps(arguments))
    return ChatResult("scripted", None, [call], "tool_calls", Usage(tokens, tokens, 2 * tokens))


def raw_call(name: str, arguments: str) -> ChatResult:
    """The model calls a tool with arguments exactly as given (which need not parse)."""
    return ChatResult("scripted", None, [ToolCall("call-raw", name, arguments)], "tool_calls", Usage(5, 5, 10))


def failing(kind: str, message: str = "scripted failure", *, retryable: bool = True) -> ApplicationError:
    """The model call fails with a classified error (``agent.llm.types.ModelErrorType``)."""
    return ApplicationError(message, type=kind, non_retryable=not retryable)


def _small_talk(_: ChatRequest) -> Reply:
    return say("Is there anything else I can help with?")


@dataclass
class Script:
    """One test's model: ``replies`` consumed in order, then ``then`` for every call after them.
    Every request is kept, so a test can see what the model was shown."""

    replies: list[Reply] = field(default_factory=list)
    then: Responder = _small_talk
    requests: list[ChatRequest] = field(default_factory=list)
    healthy: bool = True


class ScriptedModel:
    """The ``chat_completion`` and ``model_health`` activities, answering from scripts.

    The workers outlive a test, and so can its conversations (an escalation, a retry still
    scheduled), so each conversation keeps the script that was current when it started: a
    test's script is never consumed by another test's conversation.
    """

    def __init__(self) -> None:
        self.current = Script()
        self._by_workflow: dict[str, Script] = {}

    def reset(self) -> None:
        self.current = Script()

    def bind(self, workflow_id: str) -> None:
        self._by_workflow[workflow_id] = self.current

    @property
    def script(self) -> list[Reply]:
        return self.current.replies

    @script.setter
    def script(self, replies: list[Reply]) -> None:
        self.current.replies = replies

    @property
    def requests(self) -> list[ChatRequest]:
        return self.current.requests

    @property
    def then(self) -> Responder:
        return self.current.then

    @then.setter
    def then(self, responder: Responder) -> None:
        self.current.then = responder

    @property
    def healthy(self) -> bool:
        return self.current.healthy

    @healthy.setter
    def healthy(self, healthy: bool) -> None:
        self.current.healthy = healthy

    def _script(self) -> Script:
        return self._by_workflow.get(activity.info().workflow_id or "", self.current)

    @activity.defn(name=CHAT_COMPLETION_ACTIVITY)
    async def chat_completion(self, request: ChatRequest) -> ChatResult:
        script = self._script()
        script.requests.append(request)
        reply = script.replies.pop(0) if script.replies else script.then(request)
        if isinstance(reply, ApplicationError):
            raise reply
        reply.attempt = activity.info().attempt
        return reply

    @activity.defn(name=MODEL_HEALTH_ACTIVITY)
    async def model_health(self) -> str:
        if not self._script().healthy:
            raise ApplicationError("the provider is down", type="ModelConnectionError")
        return "ok"


class HashEmbeddings:
    """The ``embed_texts`` activity with deterministic vectors: the same text always gets the same one."""

    def __init__(self, blobs: LocalBlobStore) -> None:
        self._blobs = blobs  # batches arrive as blob references, as from the ingest workflow

    @activity.defn(name=EMBED_TEXTS_ACTIVITY)
    async def embed_texts(self, request: EmbedRequest) -> EmbedResult:
        texts = request.texts
        if request.texts_ref is not None:
            texts = json.loads(await self._blobs.get(request.texts_ref))
        vectors = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            vectors.append([(b - 128) / 128 for b in digest[:EMBED_DIMENSION]])
        return EmbedResult(vectors, "scripted-embedding", EMBED_DIMENSION, sum(len(t.split()) for t in texts))


# ---- the retrieval service ---------------------------------------------------------------------


@nexusrpc.handler.service_handler(service=RetrievalService)
class MemoryRetrieval:
    """The retrieval contract over a dict: versioned replace, delete, and word-overlap search."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, IndexDocument]] = {}
        self.searches: list[SearchRequest] = []

    @nexusrpc.handler.sync_operation
    async def search(self, _: nexusrpc.handler.StartOperationContext, request: SearchRequest) -> SearchResponse:
        self.searches.append(request)
        docs = self.collections.get(request.collection, {})
        words = set(request.query.lower().split())
        scored = sorted(
            ((len(words & set(d.text.lower().split())), d) for d in docs.values()), key=lambda s: (-s[0], s[1].id)
        )
        hits = [
            SearchHit(d.id, d.title, d.text, float(score), d.version, dict(d.metadata or {}))
            for score, d in scored[: request.top_k]
            if score > 0
        ]
        return SearchResponse(hits=hits, total_documents=len(docs), mode=request.mode or "bm25")

    @nexusrpc.handler.sync_operation
    async def index(self, _: nexusrpc.handler.StartOperationContext, request: IndexRequest) -> IndexResponse:
        docs = self.collections.setdefault(request.collection, {})
        answer = IndexResponse(request.collection, request.batch_id)
        for doc in request.documents:
            old = docs.get(doc.id)
            if old is None:
                answer.added += 1
            elif doc.version > old.version:
                answer.replaced += 1
            else:
                answer.unchanged += 1 if doc.version == old.version else 0
                answer.stale += 1 if doc.version < old.version else 0
                continue
            docs[doc.id] = doc
        return answer

    @nexusrpc.handler.sync_operation
    async def delete(self, _: nexusrpc.handler.StartOperationContext, request: DeleteRequest) -> DeleteResponse:
        docs = self.collections.get(request.collection, {})
        found = [i for i in request.ids if docs.pop(i, None) is not None]
        return DeleteResponse(deleted=len(found), not_found=len(request.ids) - len(found))

    @nexusrpc.handler.sync_operation
    async def stats(self, _: nexusrpc.handler.StartOperationContext, request: StatsRequest) -> StatsResponse:
        return StatsResponse(
            [
                CollectionStats(name, len(docs), EMBED_DIMENSION, len(docs), "flat", 0)
                for name, docs in self.collections.items()
                if request.collection in (None, name)
            ]
        )


# ---- the session -------------------------------------------------------------------------------


@dataclass
class Agents:
    """What a test drives and inspects: the client, the model script, the business records."""

    env: WorkflowEnvironment
    model: ScriptedModel
    retrieval: MemoryRetrieval
    business: Store
    blobs: LocalBlobStore

    @property
    def client(self) -> Client:
        return self.env.client

    @property
    def conversations(self) -> Conversations:
        return Conversations(self.client, patience_s=5)

    async def start(self, customer_id: str = "cust-ada", **settings: Any) -> str:
        """A new conversation for ``customer_id`` with these settings; its id."""
        start = ConversationStart(
            customer="Test Customer",
            customer_id=customer_id,
            acting=f"customer {customer_id} (test)",
            settings=ConversationSettings(**settings),
        )
        conversation_id = f"conv-{uuid.uuid4().hex[:10]}"
        self.model.bind(conversation_id)
        return await self.conversations.start(start, conversation_id)

    @asynccontextmanager
    async def time_passing(self) -> AsyncIterator[None]:
        """Let the test server skip ahead to the next timer or timeout while the block waits on an
        Update or a query (on its own it skips only while a client awaits a workflow's result)."""
        await self.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        try:
            yield
        finally:
            await self.client.test_service.lock_time_skipping(LockTimeSkippingRequest())

    def refunds_of(self, order_id: str) -> list[RefundResult]:
        return self.business.refunds_for_order(order_id)
