"""root_cause and root_message: the failure a person should read under Temporal's wrappers."""

from __future__ import annotations

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from workerkit import root_cause, root_message


def _wrapped(inner: BaseException) -> WorkflowFailureError:
    """What a client sees when an activity of the workflow failed with ``inner``."""
    activity = ActivityError(
        "activity error",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="index_batch",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    activity.__cause__ = inner
    return WorkflowFailureError(cause=activity)


def test_application_error_under_wrappers_gives_its_message_without_type() -> None:
    inner = ApplicationError("the document is not UTF-8; convert it first", type="BadDocument")
    err = _wrapped(inner)
    assert root_cause(err) is inner
    assert root_message(err) == "the document is not UTF-8; convert it first"


def test_other_failure_under_wrappers_gives_its_text() -> None:
    inner = TemporalTimeoutError("activity timeout", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])
    assert root_cause(_wrapped(inner)) is inner
    assert root_message(_wrapped(inner)) == "activity timeout"


def test_error_without_cause_is_its_own_root() -> None:
    plain = ValueError("bad value")
    assert root_cause(plain) is plain
    assert root_message(plain) == "bad value"
    alone = ApplicationError("refused", type="Refused")
    assert root_message(alone) == "refused"
