"""The audit of a conversation's guardrail refusals: every refusal counted *and* recorded.

Where the record lives, and why there:

- **In the workflow's state**, as data (:class:`agent.support.types.RefusalAudit`): the rule is
  decided in workflow code, so recording it there is exactly once by construction (a replay
  rebuilds the same list; a retried step cannot write a second row), needs no I/O in workflow
  code, adds no command to the history (no patch: the replay corpus replays unchanged), and
  holds while the business service or the network is down, when an audit write elsewhere could
  be lost or have to block the conversation.
- **Readable by people** through the ``status`` query (``agent chat refusals ID``, and the count
  in ``agent chat show``), while the conversation runs and after it closed (within the
  namespace's retention, or from its archive).
- **In the history**, sealed by the codec: carried over continue-as-new and returned in the
  conversation's result (``ConversationSummary.refusals``), so an auditor who decodes a history
  (through the codec server, which logs who decoded what) reads the same records.

The business service still writes its own refusals (another customer's order) to its
``access_refusals`` table; those reach the agent as tool errors and are recorded here too, so a
conversation's list is complete on its own.

:meth:`RefusalLog.record` is the only way to count a refusal, so no refusal is counted without
being recorded, nor recorded without being counted.
"""

from __future__ import annotations

from temporalio import workflow

from agent.metrics import record_guardrail_refusal
from agent.support.policy import PERSON_REASONS
from agent.support.types import RefusalAudit, RefusalRecord

REFUSALS_KEPT = 200
"""Records kept (and carried over continue-as-new) per conversation: a model looping on refused
calls must not grow the carried state without bound. Totals by rule keep counting past it."""


class RefusalLog:
    """Workflow-side: one per run, writing into the conversation's state (``CarriedState.refusals``),
    which continue-as-new hands on as it is."""

    def __init__(self, audit: RefusalAudit, run_index: int) -> None:
        self.audit = audit
        self._run_index = run_index

    def record(
        self,
        rule: str,
        tool: str,
        detail: str,
        turn: int,
        *,
        idempotency_key: str | None = None,
        approval_id: str | None = None,
    ) -> None:
        """From workflow code: count the refusal (not on replay) and keep its record."""
        record_guardrail_refusal(rule)
        self.audit.totals[rule] = self.audit.totals.get(rule, 0) + 1
        self.audit.records.append(
            RefusalRecord(
                rule=rule,
                tool=tool[:100],  # the model names unknown tools; keep what it wrote, bounded
                detail=detail[:1000],
                at=workflow.now(),
                turn=turn,
                run_index=self._run_index,
                idempotency_key=idempotency_key,
                approval_id=approval_id,
            )
        )
        del self.audit.records[:-REFUSALS_KEPT]

    def tool_refused(self, tool: str, result: dict[str, object], rule: str | None, turn: int, key: str) -> None:
        """A tool call's outcome, if a rule refused it (``rule`` set): what the model was told,
        or the approval a refund became instead of being paid."""
        if rule is None:
            return
        error = result.get("error")
        if isinstance(error, dict):
            detail, approval_id = str(error.get("message", "")), None
        else:
            approval_id = str(result.get("approval_id", ""))
            refund = f"refund {result.get('amount')} on {result.get('order_id')}"
            detail = f"{refund} waits for a person ({approval_id}): {PERSON_REASONS.get(rule, rule)}"
        self.record(rule, tool, detail, turn, idempotency_key=key, approval_id=approval_id or None)
