"""A hand-built history with payloads in every awkward place, and its expected counts."""

from __future__ import annotations

from keyops_testing import KEY_A, KEY_B, encrypted, plain
from temporalio.api.common.v1 import Header, Memo, Payloads, SearchAttributes
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.history.v1 import (
    ActivityTaskFailedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    History,
    HistoryEvent,
    NexusOperationCompletedEventAttributes,
    NexusOperationScheduledEventAttributes,
    WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from temporalio.api.sdk.v1 import UserMetadata

# key id -> payload count in build_history(); "unencrypted" counts the plain ones.
EXPECTED = {KEY_A: 5, KEY_B: 5, "unencrypted": 3}
EXPECTED_UNENCRYPTED_LOCATIONS = {
    "events[].workflow_execution_started_event_attributes.header.fields[]": 1,
    "events[].workflow_execution_started_event_attributes.search_attributes.indexed_fields[]": 1,
    "events[].workflow_execution_completed_event_attributes.result.payloads[]": 1,
}


def build_history() -> History:
    started = HistoryEvent(
        event_id=1,
        workflow_execution_started_event_attributes=WorkflowExecutionStartedEventAttributes(
            input=Payloads(payloads=[encrypted("order ORD-1", KEY_A)]),
            header=Header(fields={"_tracer-data": plain("trace context")}),
            memo=Memo(fields={"note": encrypted("memo text", KEY_A)}),
            search_attributes=SearchAttributes(indexed_fields={"CustomerTier": plain("gold")}),
        ),
        user_metadata=UserMetadata(summary=encrypted("summary", KEY_A)),
    )
    scheduled = HistoryEvent(
        event_id=5,
        activity_task_scheduled_event_attributes=ActivityTaskScheduledEventAttributes(
            activity_id="1", input=Payloads(payloads=[encrypted("activity input", KEY_A)])
        ),
    )
    failed = HistoryEvent(
        event_id=7,
        activity_task_failed_event_attributes=ActivityTaskFailedEventAttributes(
            failure=Failure(
                message="Encoded failure",
                encoded_attributes=encrypted("real message and stack", KEY_A),
                cause=Failure(
                    message="Encoded failure",
                    encoded_attributes=encrypted("cause message", KEY_B),
                    application_failure_info=ApplicationFailureInfo(
                        type="Boom", details=Payloads(payloads=[encrypted("details", KEY_B)])
                    ),
                ),
            )
        ),
    )
    nexus_scheduled = HistoryEvent(
        event_id=9,
        nexus_operation_scheduled_event_attributes=NexusOperationScheduledEventAttributes(
            endpoint="business", service="Business", operation="refund", input=encrypted("refund input", KEY_B)
        ),
    )
    nexus_completed = HistoryEvent(
        event_id=11,
        nexus_operation_completed_event_attributes=NexusOperationCompletedEventAttributes(
            scheduled_event_id=9, result=encrypted("refund result", KEY_B)
        ),
    )
    completed = HistoryEvent(
        event_id=13,
        workflow_execution_completed_event_attributes=WorkflowExecutionCompletedEventAttributes(
            result=Payloads(payloads=[encrypted("answer", KEY_B), plain("trailing plain")])
        ),
    )
    return History(events=[started, scheduled, failed, nexus_scheduled, nexus_completed, completed])
