"""The portal's HTTP surface: a page for people (sign in, the waiting approvals, approve or
reject with a note) and a JSON API for programs, both for operators (support leads) only.

Authentication is the agent's (:mod:`agent.identity`): a principals-file token or an OIDC JWT
verified by ``httpkit.jwks``. The page signs in once and then carries a session cookie
(:mod:`approval_portal.sessions`); the API takes ``Authorization: Bearer`` on every call, or the
cookie plus the ``X-CSRF-Token`` header. Every sign-in, listing and decision is audited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from temporalio.service import RPCError

from agent.chat.client import (
    EXIT_REJECTED,
    EXIT_UNAVAILABLE,
    EXIT_UNKNOWN_CONVERSATION,
    ChatError,
    check_request_id,
    new_request_id,
)
from agent.identity import Identities, IdentityError, Principal
from agent.support.approvals import MAX_NOTE_CHARS
from approval_portal import pages
from approval_portal.audit import AuditLog
from approval_portal.desk import ApprovalDesk, PendingApproval
from approval_portal.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    Sessions,
    is_loopback,
)
from httpkit.jwks import looks_like_jwt
from workerkit import ConfigError, TemporalUnreachable

log = logging.getLogger("approval_portal")

MAX_BODY_BYTES = 16 * 1024
SECURITY_HEADERS = {
    # No script anywhere: the page is plain forms.
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
_STATUS_OF = {EXIT_REJECTED: 409, EXIT_UNKNOWN_CONVERSATION: 404, EXIT_UNAVAILABLE: 503}


class Refused(Exception):
    """A request the portal will not serve; ``message`` is one sentence for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Approver:
    subject: str
    issuer: str | None
    by_cookie: bool
    session: Session | None = None


class PortalMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "portal_decisions",
            "approval decisions sent through the portal, by decision and outcome",
            ["decision", "outcome"],
            registry=self.registry,
        )
        self.logins = Counter(
            "portal_logins", "sign-ins to the portal, by outcome", ["outcome"], registry=self.registry
        )


@dataclass
class Portal:
    identities: Identities
    sessions: Sessions
    audit: AuditLog
    metrics: PortalMetrics
    connect: Callable[[], Awaitable[ApprovalDesk]]
    desk: ApprovalDesk | None = None

    def __post_init__(self) -> None:
        self._connecting = asyncio.Lock()

    # ---- who is asking -----------------------------------------------------------------------

    async def verify(self, token: str) -> tuple[Principal, int | None]:
        """The principal holding ``token`` and, for a JWT, when it expires (a session never outlives it)."""
        try:
            principal = await asyncio.to_thread(self.identities.verify, token)
        except IdentityError as err:
            raise Refused(401, str(err)) from None
        if not principal.operator:
            raise Refused(403, f"{principal.subject} may not decide approvals; a support lead (an operator) does")
        not_after = None
        if looks_like_jwt(token):
            # Verified just above; read again only for its expiry.
            exp = jwt.decode(token.strip(), options={"verify_signature": False}).get("exp")
            not_after = int(exp) if isinstance(exp, int | float) else None
        return principal, not_after

    async def approver(self, request: Request) -> Approver:
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Refused(401, "send your token as 'Authorization: Bearer <token>'")
            principal, _ = await self.verify(token)
            return Approver(principal.subject, principal.issuer, by_cookie=False)
        session = self.sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is None or not session.operator:
            raise Refused(401, "sign in first (your session is missing or has expired)")
        return Approver(session.subject, session.issuer, by_cookie=True, session=session)

    def check_csrf(self, request: Request, who: Approver, presented: str | None) -> None:
        """A state change made with the cookie must come from this portal's own page."""
        if not who.by_cookie:
            return  # a bearer token is never sent by a browser on its own
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            raise Refused(403, "this request came from another site's page; decide from the portal itself")
        assert who.session is not None
        if not self.sessions.csrf_ok(who.session, presented):
            raise Refused(403, "the form is stale or forged (CSRF token missing or wrong); reload the page")

    async def ready_desk(self) -> ApprovalDesk:
        """The desk, connecting on first use (and again after a failed try): the portal starts,
        and says why it is not ready, while the Temporal server is still down."""
        async with self._connecting:
            if self.desk is None:
                try:
                    self.desk = await self.connect()
                except (TemporalUnreachable, ConfigError) as err:
                    raise Refused(503, str(err)) from None
                log.info("connected to the Temporal server")
        return self.desk

    # ---- what they do ------------------------------------------------------------------------

    async def pending(self, who: Approver) -> list[PendingApproval]:
        try:
            found = await (await self.ready_desk()).pending()
        except RPCError as err:
            raise Refused(503, f"the Temporal server did not list the conversations: {err.message}") from None
        # Who was shown which approvals: the ids, not what they say.
        self.audit.write(
            "list",
            subject=who.subject,
            issuer=who.issuer,
            approvals=[f"{p.conversation_id}/{p.approval.approval_id}" for p in found],
        )
        return found

    async def decide(self, who: Approver, fields: dict[str, Any]) -> dict[str, Any]:
        """Send one decision; the answer's ``decided`` says whether this one was taken."""
        conversation_id, approval_id = str(fields.get("conversation_id", "")), str(fields.get("approval_id", ""))
        decision, note = fields.get("decision"), fields.get("note") or ""
        if decision not in ("approve", "reject"):
            raise Refused(400, "decision must be approve or reject")
        if not conversation_id or not approval_id:
            raise Refused(400, "name the conversation and the approval to decide")
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise Refused(400, f"the note must be text of at most {MAX_NOTE_CHARS} characters")
        try:
            decision_id = check_request_id(str(fields.get("decision_id") or new_request_id("portal")))
        except ChatError as err:
            raise Refused(400, err.message) from None
        record = {
            "subject": who.subject,
            "issuer": who.issuer,
            "conversation_id": conversation_id,
            "approval_id": approval_id,
            "decision": decision,
            "decision_id": decision_id,
            "note_chars": len(note),
        }
        try:
            outcome = await (await self.ready_desk()).decide(
                conversation_id,
                approval_id,
                approve=decision == "approve",
                approver=who.subject,
                note=note,
                decision_id=decision_id,
            )
        except ChatError as err:
            status = _STATUS_OF.get(err.exit_code, 502)
            outcome_name = "refused" if status == 409 else "error"
            self.metrics.decisions.labels(decision, outcome_name).inc()
            self.audit.write("decision", **record, outcome=outcome_name, http_status=status)
            return {"decided": False, "status": status, "error": err.message}
        self.metrics.decisions.labels(decision, outcome.status).inc()
        self.audit.write(
            "decision", **record, outcome=outcome.status, refund_id=outcome.refund_id, ticket_id=outcome.ticket_id
        )
        return {
            "decided": True,
            "status": 200,
            "approval_id": outcome.approval_id,
            "outcome": outcome.status,
            "decided_by": who.subject,
            "message": outcome.message,
            "refund_id": outcome.refund_id,
            "ticket_id": outcome.ticket_id,
        }


def _approval_json(p: PendingApproval) -> dict[str, Any]:
    a = p.approval
    return {
        "conversation_id": p.conversation_id,
        "customer_id": p.customer_id,
        "acting": p.acting,
        "approval_id": a.approval_id,
        "action": a.action,
        "order_id": a.order_id,
        "amount_cents": a.amount_cents,
        "currency": a.currency,
        "reason": a.reason,
        "summary": a.summary,
        "requested_at": a.requested_at.isoformat(),
        "deadline": a.deadline.isoformat(),
    }


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise Refused(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    return body


async def _form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise Refused(415, "send the form as application/x-www-form-urlencoded")
    parsed = parse_qs((await _body(request)).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=not is_loopback(request.url.hostname),
    )


def create_app(
    identities: Identities,
    sessions: Sessions,
    audit: AuditLog,
    connect: Callable[[], Awaitable[ApprovalDesk]],
) -> Starlette:
    """``connect`` makes the desk (a Temporal client) once the server's event loop runs."""
    portal = Portal(identities, sessions, audit, PortalMetrics(), connect)

    def page(html: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def login_form(request: Request, problem: str | None = None, status: int = 200) -> Response:
        nonce, token = sessions.login_nonce()
        response = page(pages.login_page(token, problem), status)
        _cookie(response, request, LOGIN_COOKIE, nonce, 600)
        return response

    async def login_get(request: Request) -> Response:
        if sessions.read(request.cookies.get(SESSION_COOKIE)):
            return RedirectResponse("/", 303)
        return login_form(request)

    async def login_post(request: Request) -> Response:
        try:
            form = await _form(request)
        except Refused as err:
            return login_form(request, err.message, err.status)
        if not sessions.login_ok(request.cookies.get(LOGIN_COOKIE), form.get(CSRF_FIELD)):
            portal.metrics.logins.labels("forged").inc()
            return login_form(request, "the sign-in form was stale or forged; sign in again", 403)
        try:
            principal, not_after = await portal.verify(form.get("token", ""))
        except Refused as err:
            portal.metrics.logins.labels("refused").inc()
            audit.write("login", outcome="refused", http_status=err.status)
            return login_form(request, err.message, err.status)
        value, session = sessions.issue(
            principal.subject, operator=principal.operator, issuer=principal.issuer, not_after=not_after
        )
        portal.metrics.logins.labels("ok").inc()
        audit.write("login", outcome="ok", subject=principal.subject, issuer=principal.issuer)
        response = RedirectResponse("/", 303, headers=SECURITY_HEADERS)
        _cookie(response, request, SESSION_COOKIE, value, max(1, session.expires - int(time.time())))
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", 303, headers=SECURITY_HEADERS)
        try:
            who = await portal.approver(request)
            portal.check_csrf(request, who, (await _form(request)).get(CSRF_FIELD))
        except Refused:
            return response
        audit.write("logout", subject=who.subject, issuer=who.issuer)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def index(request: Request) -> Response:
        session = sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return RedirectResponse("/login", 303)
        who = Approver(session.subject, session.issuer, by_cookie=True, session=session)
        csrf = sessions.csrf_token(session)
        try:
            pending = await portal.pending(who)
        except Refused as err:
            return page(pages.outcome_page(who.subject, csrf, decided=False, title="Cannot list", message=err.message))
        return page(pages.approvals_page(who.subject, csrf, pending))

    async def decide_form(request: Request) -> Response:
        try:
            who = await portal.approver(request)
        except Refused:
            return RedirectResponse("/login", 303)
        assert who.session is not None
        csrf = sessions.csrf_token(who.session)
        try:
            form = await _form(request)
            portal.check_csrf(request, who, form.get(CSRF_FIELD))
            answer = await portal.decide(who, form)
        except Refused as err:
            return page(
                pages.outcome_page(who.subject, csrf, decided=False, title="Not decided", message=err.message),
                err.status,
            )
        if not answer["decided"]:
            html = pages.outcome_page(who.subject, csrf, decided=False, title="Not decided", message=answer["error"])
            return page(html, answer["status"])
        verb = "approved" if form["decision"] == "approve" else "rejected"
        title = f"{answer['approval_id']} {verb}: {answer['outcome']}"
        return page(pages.outcome_page(who.subject, csrf, decided=True, title=title, message=answer["message"]))

    def api_error(err: Refused) -> JSONResponse:
        headers = {"www-authenticate": "Bearer"} if err.status == 401 else None
        return JSONResponse({"error": err.message}, status_code=err.status, headers=headers)

    async def api_list(request: Request) -> Response:
        try:
            who = await portal.approver(request)
            pending = await portal.pending(who)
        except Refused as err:
            return api_error(err)
        return JSONResponse({"approvals": [_approval_json(p) for p in pending], "approver": who.subject})

    async def api_decide(request: Request) -> Response:
        try:
            who = await portal.approver(request)
            portal.check_csrf(request, who, request.headers.get(CSRF_HEADER))
            try:
                body = json.loads(await _body(request) or b"{}")
            except ValueError:
                raise Refused(400, "the body must be a JSON object") from None
            if not isinstance(body, dict):
                raise Refused(400, "the body must be a JSON object")
            answer = await portal.decide(who, {**body, **request.path_params})
        except Refused as err:
            return api_error(err)
        return JSONResponse(answer, status_code=answer["status"])

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        try:
            desk = await portal.ready_desk()
        except Refused as err:
            return PlainTextResponse(f"not ready: {err.message}", status_code=503)
        if not await desk.reachable():
            return PlainTextResponse("not ready: the Temporal server does not answer", status_code=503)
        return PlainTextResponse("ready")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(portal.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/login", login_get, methods=["GET"]),
            Route("/login", login_post, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/decide", decide_form, methods=["POST"]),
            Route("/api/approvals", api_list, methods=["GET"]),
            Route("/api/approvals/{conversation_id}/{approval_id}/decision", api_decide, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
    )
    app.state.portal = portal
    return app
