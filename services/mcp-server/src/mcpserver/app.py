"""The MCP server: the platform's capabilities as tools, every call a Temporal workflow.

The server holds no state of its own (a Temporal client, the token settings): any replica can
answer any call, and a replica killed mid-call loses nothing, because the call is a workflow
the client reaches again by resending it (:mod:`mcpserver.calls`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import create_protected_resource_routes
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl, BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from agent import tools
from agent.chat.client import ChatError, Conversations
from agent.queues import AGENT_TASK_QUEUE
from agent.support.policy import format_money
from agent.support.types import ConversationStart
from agent.workflows.support_agent import SupportAgentWorkflow
from agent.workflows.tool_call import ToolInvocation
from mcpserver import auth
from mcpserver.audit import AuditLog, AuditRecord, arguments_digest
from mcpserver.auth import Authenticator, AuthError, Caller
from mcpserver.calls import CallFailed, call_key, run_tool, settings_for, waiting
from mcpserver.metrics import Metrics
from mcpserver.settings import Settings

INSTRUCTIONS = (
    "Tools of a shop's durable support platform. Every call runs as a Temporal workflow: if a call "
    "times out, send it again with the same idempotency_key (or the same arguments) and you get the "
    "first call's result, never a second refund."
)
Key = Annotated[
    str | None,
    Field(
        default=None,
        description="Your id for this request; resend it with a retry. Calls with different keys are "
        "different requests (leave it out to let the arguments identify the call).",
    ),
]


class SubmitForApproval(BaseModel):
    """What the elicitation asks before a refund that needs a person is requested."""

    submit: bool = Field(description="Ask an approver for this refund?")


# An authenticated HTTP caller travels through the SDK's auth middleware as an AccessToken.
def access_token_of(caller: Caller, token: str) -> AccessToken:
    return AccessToken(
        token=token,
        client_id=caller.subject,
        subject=caller.subject,
        scopes=sorted(caller.rights),
        claims={"customer_id": caller.customer_id, "method": caller.method},
    )


def caller_of(access: AccessToken) -> Caller:
    claims = access.claims or {}
    return Caller(
        access.subject or access.client_id, claims["method"], frozenset(access.scopes), claims.get("customer_id")
    )


class Verifier(TokenVerifier):
    """The SDK's bearer check, answered by :class:`Authenticator` (a JWKS fetch off the loop)."""

    def __init__(self, authenticator: Authenticator, audit: AuditLog) -> None:
        self._authenticator = authenticator
        self._audit = audit

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            caller = await anyio.to_thread.run_sync(self._authenticator.authenticate, token)
        except AuthError as err:
            self._audit.write(AuditRecord("-", None, None, "http", outcome="refused", reason=err.reason))
            return None
        return access_token_of(caller, token)


class TemporalClient:
    """Connects on first use, inside the serving event loop (a client belongs to its loop)."""

    def __init__(self, connect: Callable[[], Awaitable[Client]]) -> None:
        self._connect = connect
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        async with self._lock:
            if self._client is None:
                self._client = await self._connect()
            return self._client


class PlatformTools:
    """The tools, bound to one deployment's settings; ``stdio_caller`` is the caller on stdio
    (its token read from the environment at start), None over HTTP (each request's token)."""

    def __init__(
        self,
        settings: Settings,
        temporal: TemporalClient,
        audit: AuditLog,
        metrics: Metrics,
        stdio_caller: Caller | None = None,
    ) -> None:
        self.settings = settings
        self.temporal = temporal
        self.audit = audit
        self.metrics = metrics
        self.stdio_caller = stdio_caller

    def caller(self) -> Caller:
        if self.stdio_caller is not None:
            return self.stdio_caller
        access = get_access_token()
        if access is None:
            raise AuthError("missing_token", "a bearer token is required")
        return caller_of(access)

    async def _call(
        self,
        ctx: Context,
        tool: str,
        right: str,
        arguments: dict[str, Any],
        body: Callable[[Caller, AuditRecord, Callable[[float, str], Awaitable[None]]], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Authorise, audit and run one call; a refusal or failure becomes a ToolError."""
        transport = "stdio" if self.stdio_caller is not None else "http"
        record = AuditRecord(tool, None, None, transport)
        try:
            caller = self.caller()
            record.subject, record.auth_method = caller.subject, caller.method
            caller.require(right, tool)

            async def progress(step: float, message: str) -> None:
                await ctx.report_progress(step, None, message)

            result = await body(caller, record, progress)
        except AuthError as err:
            record.outcome, record.reason = "refused", err.reason
            self._finish(record)
            raise ToolError(f"refused: {err.message}") from None
        except (CallFailed, ChatError, ValueError) as err:
            record.outcome, record.reason = "error", type(err).__name__
            self._finish(record)
            raise ToolError(str(err)) from None
        failed = isinstance(result.get("error"), dict)
        record.outcome = "tool_error" if failed else "ok"
        if failed:
            record.reason = str(result["error"].get("type", ""))[:64]
        self._finish(record)
        return result

    def _finish(self, record: AuditRecord) -> None:
        """One call's end: its audit line and its metrics, together."""
        self.audit.write(record)
        self.metrics.observe(record.tool, record.outcome, record.latency_ms / 1000)

    def _tool_body(
        self, tool: str, arguments: dict[str, Any], idempotency_key: str | None, *, effect: bool
    ) -> Callable[[Caller, AuditRecord, Callable[[float, str], Awaitable[None]]], Awaitable[dict[str, Any]]]:
        async def body(caller: Caller, record: AuditRecord, progress: Callable[[float, str], Awaitable[None]]):
            key = call_key(caller.subject, tool, arguments, idempotency_key)
            record.arguments_sha256 = arguments_digest(arguments, key)
            invocation = ToolInvocation(
                tool,
                arguments,
                caller.subject,
                caller.customer_id,
                settings_for(self.settings.approval_threshold_cents),
            )
            client = await self.temporal.get()
            record.workflow_id, result = await run_tool(client, invocation, key, effect=effect, progress=progress)
            return {**result.result, "workflow_id": record.workflow_id}

        return body

    async def _workflow_tool(
        self,
        ctx: Context,
        tool: str,
        right: str,
        args: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        effect: bool = False,
        agent_tool: str | None = None,
    ) -> dict[str, Any]:
        """A call run by ToolCallWorkflow; ``agent_tool``: the agent tool's name, when it differs."""
        body = self._tool_body(agent_tool or tool, args, idempotency_key, effect=effect)
        return await self._call(ctx, tool, right, args, body)

    async def search_knowledge(self, ctx: Context, query: str) -> dict[str, Any]:
        return await self._workflow_tool(ctx, tools.SEARCH_KNOWLEDGE.name, auth.KNOWLEDGE_READ, {"query": query})

    async def lookup_order(self, ctx: Context, order_id: str) -> dict[str, Any]:
        return await self._workflow_tool(ctx, tools.LOOKUP_ORDER.name, auth.ORDERS_READ, {"order_id": order_id})

    async def lookup_ticket(self, ctx: Context, ticket_id: str) -> dict[str, Any]:
        return await self._workflow_tool(ctx, tools.LOOKUP_TICKET.name, auth.TICKETS_READ, {"ticket_id": ticket_id})

    async def create_ticket(
        self, ctx: Context, reason: str, order_id: str | None = None, idempotency_key: Key = None
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"reason": reason}
        if order_id:
            args["order_id"] = order_id
        return await self._workflow_tool(
            ctx,
            "create_ticket",
            auth.TICKETS_WRITE,
            args,
            idempotency_key=idempotency_key,
            effect=True,
            agent_tool=tools.ESCALATE_TO_HUMAN.name,
        )

    async def refund_order(
        self,
        ctx: Context,
        order_id: str,
        amount_cents: Annotated[int, Field(ge=1, description="Amount in cents of the order's currency.")],
        reason: str,
        currency: Annotated[str | None, Field(default=None, pattern="^[A-Z]{3}$")] = None,
        idempotency_key: Key = None,
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"order_id": order_id, "amount_cents": amount_cents, "reason": reason}
        if currency:
            args["currency"] = currency
        if amount_cents > self.settings.approval_threshold_cents and self._may_refund():
            if await self._declined(ctx, amount_cents, order_id):
                return {"status": "not_requested", "nothing_paid": True, "why": "you chose not to ask an approver"}
        return await self._workflow_tool(
            ctx, tools.REFUND_ORDER.name, auth.REFUNDS_WRITE, args, idempotency_key=idempotency_key, effect=True
        )

    def _may_refund(self) -> bool:
        """Whether the caller holds the refund right; a caller without it is refused (and audited)
        by the call itself, never asked anything first."""
        try:
            self.caller().require(auth.REFUNDS_WRITE, tools.REFUND_ORDER.name)
        except AuthError:
            return False
        return True

    async def _declined(self, ctx: Context, amount_cents: int, order_id: str) -> bool:
        """Ask the person at the client, when it can be asked (elicitation), whether a refund that
        waits for an approver should be requested; False when it cannot ask."""
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return False
        threshold = self.settings.approval_threshold_cents
        answer = await ctx.elicit(
            f"A refund of {amount_cents / 100:.2f} on {order_id} is above the approval threshold "
            f"({threshold / 100:.2f}): a person must approve it before anything is paid. Ask for approval?",
            SubmitForApproval,
        )
        return not (answer.action == "accept" and answer.data.submit)

    async def support_conversation(
        self,
        ctx: Context,
        message: str,
        conversation_id: str | None = None,
        customer_id: Annotated[str | None, Field(default=None, description="Operators only: who it is for.")] = None,
        idempotency_key: Key = None,
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"message": message, "conversation_id": conversation_id, "customer_id": customer_id}

        async def body(caller: Caller, record: AuditRecord, progress: Callable[[float, str], Awaitable[None]]):
            key = call_key(caller.subject, "support_conversation", args, idempotency_key)
            record.arguments_sha256 = arguments_digest(args, key)
            client = await self.temporal.get()
            cid = conversation_id or await self._start_conversation(client, caller, customer_id, key)
            record.workflow_id = cid
            chat = Conversations(client)
            if conversation_id:
                status = await chat.status(cid)
                if caller.customer_id is not None and status.customer_id != caller.customer_id:
                    raise AuthError("other_customer", f"conversation {cid} is not {caller.subject}'s")
            await progress(0, f"conversation {cid}: message sent, the agent is answering")
            reply = await waiting(
                asyncio.ensure_future(chat.send(cid, message, message_id=f"mcp-{key}")),
                progress,
                "support_conversation",
            )
            return {"conversation_id": cid, **asdict(reply)}

        return await self._call(ctx, "support_conversation", auth.CONVERSATIONS_WRITE, args, body)

    @staticmethod
    async def _start_conversation(client: Client, caller: Caller, customer_id: str | None, key: str) -> str:
        if caller.customer_id is not None and customer_id not in (None, caller.customer_id):
            raise AuthError("other_customer", f"{caller.subject} may act only for customer {caller.customer_id}")
        acting_for = caller.customer_id or customer_id
        if not acting_for:
            raise ValueError("an operator's conversation needs customer_id: the customer it is for")
        how = f"MCP caller {caller.subject}" + ("" if caller.customer_id else f" acting for {acting_for}")
        cid = f"mcp-{key[:24]}"
        await client.start_workflow(
            SupportAgentWorkflow.run,
            ConversationStart(customer=caller.subject, customer_id=acting_for, acting=how),
            id=cid,
            task_queue=AGENT_TASK_QUEUE,
            # A resend of the starting call reaches the conversation the first one started.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        return cid


def build_server(platform: PlatformTools, verifier: TokenVerifier | None) -> MCPServer:
    s = platform.settings
    server = MCPServer(
        "durable-support",
        instructions=INSTRUCTIONS,
        token_verifier=verifier,
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(s.authorization_server),
            resource_server_url=AnyHttpUrl(s.public_url),
            # Audience is the verifier's to check (httpkit.jwks); static tokens have none.
            validate_token_resource=False,
        )
        if verifier is not None
        else None,
    )
    threshold = format_money(s.approval_threshold_cents, "EUR").replace("EUR", "").strip()
    server.add_tool(platform.search_knowledge, name="search_knowledge", description=tools.SEARCH_KNOWLEDGE.description)
    server.add_tool(platform.lookup_order, name="lookup_order", description=tools.LOOKUP_ORDER.description)
    server.add_tool(
        platform.refund_order,
        name="refund_order",
        description=f"{tools.REFUND_ORDER.description} The threshold here is {threshold} in the order's currency. "
        "Made once per idempotency_key.",
    )
    server.add_tool(
        platform.create_ticket,
        name="create_ticket",
        description="Open a support ticket for a person to handle; returns the ticket. Made once per idempotency_key.",
    )
    server.add_tool(platform.lookup_ticket, name="lookup_ticket", description=tools.LOOKUP_TICKET.description)
    server.add_tool(
        platform.support_conversation,
        name="support_conversation",
        description="Talk to the support agent: leave conversation_id out to start a conversation, "
        "pass it to continue one. Returns the agent's answer and the conversation id.",
    )
    return server


def http_app(server: MCPServer, settings: Settings, temporal: TemporalClient, metrics: Metrics) -> Starlette:
    """Streamable HTTP, stateless (any replica answers any request), with the protected resource
    metadata (RFC 9728) listing every right as a scope, and health endpoints."""
    app = server.streamable_http_app(
        stateless_http=True,
        host=settings.host,
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=bool(settings.allowed_hosts),
            allowed_hosts=list(settings.allowed_hosts),
            allowed_origins=list(settings.allowed_origins),
        ),
    )
    # The SDK lists only the scopes every request needs; ours are per tool, and a client should
    # learn all of them from the metadata.
    app.router.routes = [r for r in app.router.routes if "oauth-protected-resource" not in getattr(r, "path", "")]
    app.router.routes.extend(
        create_protected_resource_routes(
            resource_url=AnyHttpUrl(settings.public_url),
            authorization_servers=[AnyHttpUrl(settings.authorization_server)],
            scopes_supported=list(auth.RIGHTS),
            resource_name="durable-support MCP server",
        )
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        # Ready once Temporal answers: a replica that cannot start workflows takes no calls.
        try:
            client = await asyncio.wait_for(temporal.get(), timeout=5)
            await client.service_client.check_health(timeout=timedelta(seconds=2))
        except Exception as err:
            return JSONResponse({"status": "unavailable", "reason": type(err).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    app.router.routes.extend(
        [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_endpoint)]
    )
    return app
