"""The compact account of earlier turns that a new run starts from (pure, deterministic).

Built from structured state, not by a model: it costs nothing, cannot fail, and says exactly
what happened (the full transcript is in the blob store for anyone who needs more).
"""

from __future__ import annotations

from agent.blobs.types import preview_of
from agent.support.types import ActionRecord, Approval, ApprovalStatus

MAX_ASKED = 8
MAX_ACTIONS = 12


def remember_ask(asked: list[str], text: str) -> list[str]:
    """The last few customer requests, shortened."""
    return [*asked, preview_of(text, 120)][-MAX_ASKED:]


def summarize(archived_turns: int, asked: list[str], actions: list[ActionRecord], approvals: list[Approval]) -> str:
    if archived_turns == 0:
        return ""
    lines = [f"Summary of the {archived_turns} earlier turn(s) of this conversation."]
    if asked:
        lines.append("Recent customer requests: " + "; ".join(f'"{a}"' for a in asked) + ".")
    if actions:
        lines.append("Actions taken: " + "; ".join(a.summary for a in actions[-MAX_ACTIONS:]) + ".")
    pending = [a for a in approvals if a.status == ApprovalStatus.PENDING]
    if pending:
        lines.append(
            "Waiting for a person's approval: " + "; ".join(f"{a.approval_id} ({a.summary})" for a in pending) + "."
        )
    return "\n".join(lines)
