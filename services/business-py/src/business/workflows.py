"""Workflows of the business worker (deterministic; no I/O here)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from business.activities import INVALID_REFUND, ORDER_NOT_FOUND, BusinessActivities
    from nexus_contracts.business import RefundRequest, RefundResult
    from workerkit.deployment import when_versioned

# Transient failures (a locked or briefly unavailable database) retry with backoff until the
# caller's Nexus operation timeout gives up; the write is idempotent, so retries are free.
REFUND_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[ORDER_NOT_FOUND, INVALID_REFUND],
)


# Auto-upgrade: on the embedded store the business worker is the single writer of its SQLite
# file, and on PostgreSQL a rollout replaces its replicas too, so the build that started a refund
# is gone once its pods are replaced. A pinned
# refund would wait for it forever; this one moves to the new build, which must replay it (a
# change to this workflow goes behind workflow.patched, and the replay gate checks it).
@workflow.defn(versioning_behavior=when_versioned(VersioningBehavior.AUTO_UPGRADE))
class RefundWorkflow:
    """Backs the ``refund`` Nexus operation; its id derives from the idempotency key."""

    @workflow.run
    async def run(self, request: RefundRequest) -> RefundResult:
        try:
            return await workflow.execute_activity_method(
                BusinessActivities.apply_refund,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=REFUND_RETRY_POLICY,
            )
        except ActivityError as err:
            # Re-raise the business error itself, so the Nexus caller (an agent's model, in
            # the end) reads "cannot refund ..." one level down instead of "activity failed".
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in (ORDER_NOT_FOUND, INVALID_REFUND):
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise
