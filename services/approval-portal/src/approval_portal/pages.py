"""The portal's HTML: server-rendered, no script at all (so the Content-Security-Policy forbids
every script), plain forms that post back with the session's CSRF token. Every value shown is
escaped."""

from __future__ import annotations

from html import escape

from agent.chat.client import new_request_id
from approval_portal.desk import PendingApproval
from approval_portal.sessions import CSRF_FIELD

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2330;max-width:72rem}
h1{font-size:1.4rem} table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ccd;
padding:.5rem;text-align:left;vertical-align:top} .amount{font-weight:600;white-space:nowrap}
.ok{color:#0a6b2b} .refused{color:#a3261b} textarea{width:16rem;height:3rem}
button{margin:.2rem;padding:.3rem .8rem} header{display:flex;justify-content:space-between}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def login_page(form_token: str, problem: str | None = None) -> str:
    error = f'<p class="refused" role="alert">{escape(problem)}</p>' if problem else ""
    return _page(
        "Approval portal: sign in",
        "<h1>Approval portal</h1>"
        f"{error}"
        '<form method="post" action="/login">'
        '<label>Access token <input type="password" name="token" autocomplete="off" required></label> '
        f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(form_token)}">'
        "<button type=submit>Sign in</button></form>"
        "<p>Use your identity provider's token, or on a dev stack the support lead's "
        "(<code>.data/devstack/agent-token-operator</code>).</p>",
    )


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency}"


def _row(item: PendingApproval, csrf: str) -> str:
    a = item.approval
    hidden = (
        f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf)}">'
        f'<input type="hidden" name="conversation_id" value="{escape(item.conversation_id)}">'
        f'<input type="hidden" name="approval_id" value="{escape(a.approval_id)}">'
        # One id per rendered form: a double click or a resubmit is the same decision, never two.
        f'<input type="hidden" name="decision_id" value="{escape(new_request_id("portal"))}">'
    )
    return (
        f'<tr data-approval="{escape(item.conversation_id)}/{escape(a.approval_id)}">'
        f"<td>{escape(item.conversation_id)}<br><small>{escape(item.acting or item.customer_id)}</small></td>"
        f"<td>{escape(a.approval_id)}</td><td>{escape(a.action)} of order {escape(a.order_id)}</td>"
        f'<td class="amount">{escape(_money(a.amount_cents, a.currency))}</td>'
        f"<td>{escape(a.summary)}<br><small>customer's reason: {escape(a.reason)}</small></td>"
        f"<td><small>asked {a.requested_at:%Y-%m-%d %H:%M} UTC<br>due {a.deadline:%Y-%m-%d %H:%M} UTC</small></td>"
        f'<td><form method="post" action="/decide">{hidden}'
        '<textarea name="note" maxlength="2000" placeholder="note (optional)"></textarea><br>'
        '<button type="submit" name="decision" value="approve">Approve</button>'
        '<button type="submit" name="decision" value="reject">Reject</button></form></td></tr>'
    )


def _header(subject: str, csrf: str) -> str:
    return (
        f"<header><h1>Refunds waiting for a decision</h1><form method=post action=/logout>"
        f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf)}">'
        f"signed in as <strong>{escape(subject)}</strong> <button type=submit>Sign out</button></form></header>"
    )


def approvals_page(subject: str, csrf: str, pending: list[PendingApproval]) -> str:
    if pending:
        heads = "".join(
            f"<th>{h}</th>" for h in ("conversation", "approval", "action", "amount", "context", "when", "decision")
        )
        rows = "".join(_row(p, csrf) for p in pending)
        table = f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"
    else:
        table = "<p>No approval is waiting.</p>"
    return _page("Approval portal", _header(subject, csrf) + table)


def outcome_page(subject: str, csrf: str, *, decided: bool, title: str, message: str) -> str:
    kind = "ok" if decided else "refused"
    return _page(
        "Approval portal",
        _header(subject, csrf)
        + f'<section class="{kind}" role="status"><h2>{escape(title)}</h2><p>{escape(message)}</p></section>'
        + '<p><a href="/">Back to the waiting approvals</a></p>',
    )
