"""The payload walker finds payloads wherever the protobuf puts them."""

from __future__ import annotations

from collections import Counter

from history_fixture import EXPECTED, build_history
from keyops_testing import KEY_A, KEY_B, plain, ring
from temporalio.api.common.v1 import Header, Memo, SearchAttributes
from temporalio.api.history.v1 import History, HistoryEvent, WorkflowExecutionStartedEventAttributes

from keyops.history import TRACE_CONTEXT_HEADER, iter_payloads, walk_payloads
from payload_codec import EncryptionCodec, is_encrypted, payload_key_id


def _labels(payloads) -> Counter[str]:
    return Counter(payload_key_id(p) if is_encrypted(p) else "unencrypted" for p in payloads)


def test_walks_every_payload_of_a_history() -> None:
    assert _labels(iter_payloads(build_history())) == EXPECTED


def test_accepts_one_event_or_a_list_of_events() -> None:
    history = build_history()
    failed = history.events[2]
    assert _labels(iter_payloads(failed)) == {KEY_A: 1, KEY_B: 2}
    assert _labels(iter_payloads(list(history.events))) == EXPECTED


def test_paths_name_the_field_including_failure_causes_and_nexus() -> None:
    paths = {f.path for f in walk_payloads(build_history())}
    assert "events[2].activity_task_failed_event_attributes.failure.encoded_attributes" in paths
    assert "events[2].activity_task_failed_event_attributes.failure.cause.encoded_attributes" in paths
    assert (
        "events[2].activity_task_failed_event_attributes.failure.cause.application_failure_info.details.payloads[0]"
        in paths
    )
    assert "events[3].nexus_operation_scheduled_event_attributes.input" in paths
    assert "events[4].nexus_operation_completed_event_attributes.result" in paths
    assert "events[0].workflow_execution_started_event_attributes.memo.fields[note]" in paths
    assert "events[0].user_metadata.summary" in paths
    found = next(f for f in walk_payloads(build_history()) if f.path.endswith("memo.fields[note]"))
    assert found.location == "events[].workflow_execution_started_event_attributes.memo.fields[]"


def test_yields_the_history_s_own_objects_so_they_can_be_rewritten() -> None:
    history = build_history()
    codec = EncryptionCodec(ring(KEY_B), "agents")
    for found in walk_payloads(history):
        found.payload.CopyFrom(codec.decode_one(found.payload))
    assert not any(is_encrypted(p) for p in iter_payloads(history))
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].data == b'"order ORD-1"'


def test_a_bare_payload_is_itself() -> None:
    payload = plain("x")
    assert list(iter_payloads(payload)) == [payload]


def test_only_ids_and_bookkeeping_are_plain_by_design() -> None:
    """The trace context header and search attributes may be plain; any other header, the memo
    and inputs may not (a plain one there is a payload written without the codec)."""
    history = History(
        events=[
            HistoryEvent(
                workflow_execution_started_event_attributes=WorkflowExecutionStartedEventAttributes(
                    header=Header(fields={TRACE_CONTEXT_HEADER: plain("trace"), "tenant": plain("acme")}),
                    memo=Memo(fields={"note": plain("secret")}),
                    search_attributes=SearchAttributes(indexed_fields={"AgentPendingApprovals": plain("1")}),
                )
            )
        ]
    )
    started = "events[0].workflow_execution_started_event_attributes"
    assert {f.path: f.plain_by_design for f in walk_payloads(history)} == {
        f"{started}.header.fields[{TRACE_CONTEXT_HEADER}]": True,
        f"{started}.header.fields[tenant]": False,
        f"{started}.memo.fields[note]": False,
        f"{started}.search_attributes.indexed_fields[AgentPendingApprovals]": True,
    }
