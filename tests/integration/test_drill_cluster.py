"""Cluster drill: server nodes, then PostgreSQL, SIGKILLed under support conversations (drills.cluster).

On a cluster of its own (never the cluster tier's: this one is killed). ``make drill-cluster``
runs it at full size (``DRILL_CLUSTER_CONVERSATIONS``, default 30 there) and writes the summary to
``DRILL_CLUSTER_OUT``; ``make test`` runs it smaller when the server is built. Skipped, with the
reason, when the server or HAProxy is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cluster_support import cluster_unavailable_reason, running_cluster
from harness import client_for

import drills.cluster
from drills.bench_report import report_header
from drills.cluster import CLUSTER_KILL_PLAN, run_cluster_drill

pytestmark = pytest.mark.skipif(cluster_unavailable_reason() is not None, reason=str(cluster_unavailable_reason()))


@pytest.mark.timeout(2400)
async def test_no_conversation_is_lost_and_nothing_is_paid_twice_when_nodes_and_the_database_die() -> None:
    conversations = int(os.environ.get("DRILL_CLUSTER_CONVERSATIONS", "6"))
    load_before = os.getloadavg()[0]
    with running_cluster() as stack:
        client = await client_for(stack, "agents")
        summary = await run_cluster_drill(stack, client, conversations=conversations)
        down = [s.name for s in stack.status() if s.running is None]
    load_after = os.getloadavg()[0]
    header = report_header(drills.cluster.__doc__ or "")
    header["load_average_1m"] = {"before": round(load_before, 2), "after": round(load_after, 2)}
    report = json.dumps({**header, **summary.as_dict()}, indent=2)
    print("\n" + summary.table())
    if out := os.environ.get("DRILL_CLUSTER_OUT"):
        Path(out).write_text(report + "\n")
    assert [k.targets for k in summary.kills] == [list(k) for k in CLUSTER_KILL_PLAN], report
    assert summary.server_kills == 2 and summary.db_restarts == 1, report
    assert down == [], f"not running after the drill: {down}"
    assert summary.lost_conversations == 0, report
    assert summary.repeated_recorded_calls == 0, report
    assert summary.recorded_calls > 0, report
    assert summary.duplicate_refunds == 0 and summary.refunds == summary.refunds_asked, report
    assert summary.conversations_with_wrong_refunds == 0, report
    assert summary.extra_approvals == 0 and summary.escalation_tickets == 0, report
    assert summary.messages_processed_twice == 0, report
    # Every restart was followed by progress: a workflow task completed after it.
    assert all(k.resume_s is not None for k in summary.kills), report
