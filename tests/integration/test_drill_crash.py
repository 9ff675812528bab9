"""Crash drill: the agent worker is SIGKILLed at random moments during support conversations.

Runs on its own stack (never the session ``stack``: its workers are shared). ``make drill-crash``
runs this test bigger (``DRILL_CRASH_CONVERSATIONS``, ``DRILL_CRASH_KILLS``) and writes the summary
to ``DRILL_CRASH_OUT``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from harness import client_for, running_stack

from drills.crash import run_drill


@pytest.mark.timeout(900)
async def test_no_model_call_or_refund_is_paid_twice_under_sigkill(tmp_path: Path) -> None:
    conversations = int(os.environ.get("DRILL_CRASH_CONVERSATIONS", "4"))
    kills = int(os.environ.get("DRILL_CRASH_KILLS", "2"))
    with running_stack(tmp_path / "stack") as stack:
        client = await client_for(stack, "agents")
        summary = await run_drill(stack, client, conversations=conversations, kills=kills, seed=None)
    report = json.dumps(summary.as_dict(), indent=2)
    print(report)
    if out := os.environ.get("DRILL_CRASH_OUT"):
        Path(out).write_text(report + "\n")
    assert summary.kills == kills, "the workers were not killed as often as asked"
    assert summary.completed_conversations == conversations, report
    assert summary.paid_twice == 0, report
    assert summary.refunds == conversations and summary.duplicate_refunds == 0, report
    assert summary.approved_without_one_refund == 0, report
    assert summary.completed_in_history > 0, report
    # Model calls are slowed down during the drill, so kills do cut calls in flight: the path
    # that tells a lost answer from a repeated payment is exercised, not only written.
    assert summary.in_flight_repeats >= 1, report

