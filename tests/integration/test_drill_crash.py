"""Crash drill: every kind of process is SIGKILLed during support conversations (drills.crash).

Runs on its own stack (never the session ``stack``: its processes are shared). ``make drill-crash``
runs this test bigger (``DRILL_CRASH_CONVERSATIONS``, ``DRILL_CRASH_KILLS``) and writes the summary
to ``DRILL_CRASH_OUT``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from harness import client_for, running_stack

from drills.crash import KILL_PLAN, STEP_TIMEOUT_S, run_drill


@pytest.mark.timeout(1800)
async def test_every_request_acts_once_and_every_answer_is_paid_once_under_sigkill(tmp_path: Path) -> None:
    conversations = int(os.environ.get("DRILL_CRASH_CONVERSATIONS", "4"))
    kills = int(os.environ.get("DRILL_CRASH_KILLS", str(len(KILL_PLAN))))
    with running_stack(tmp_path / "stack") as stack:
        client = await client_for(stack, "agents")
        summary = await run_drill(stack, client, conversations=conversations, kills=kills, seed=None)
        down = [s.name for s in stack.status() if s.running is None]
    report = json.dumps(summary.as_dict(), indent=2)
    print(report)
    if out := os.environ.get("DRILL_CRASH_OUT"):
        Path(out).write_text(report + "\n")
    assert len(summary.kills) == kills, "the processes were not killed as often as asked"
    assert {name for k in summary.kills for name in k.targets} >= {n for t in KILL_PLAN[:kills] for n in t}
    assert down == [], f"not running after the drill: {down}"
    assert summary.completed_conversations == conversations, report
    # The customer's intent: one refund per refund asked for, one approval, one turn per message.
    assert summary.refunds == summary.refunds_asked and summary.conversations_with_wrong_refunds == 0, report
    assert summary.extra_approvals == 0 and summary.escalation_tickets == 0, report
    assert summary.messages_processed_twice == 0, report
    assert summary.paid_twice == 0, report
    assert summary.paid_once > 0, report
    assert summary.slowest_request_s < STEP_TIMEOUT_S, report
