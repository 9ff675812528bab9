"""Activities of the business worker: the only code that writes to the business database."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from business.metrics import DUPLICATE, NOT_FOUND, REFUNDED, REJECTED, record_refund
from business.store import InvalidRefund, OrderNotFound, Store
from nexus_contracts.business import RefundRequest, RefundResult

# ApplicationError types, also listed as non-retryable in the workflow's retry policy.
ORDER_NOT_FOUND = "OrderNotFound"
INVALID_REFUND = "InvalidRefund"


class BusinessActivities:
    """Activities bound to the worker's one :class:`Store`.

    The methods are synchronous (the store blocks), so the worker runs them on its thread pool.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn
    def apply_refund(self, request: RefundRequest) -> RefundResult:
        # Safe to retry at any point, including after a commit whose reply was lost: the
        # store answers a known key with the refund it already made.
        try:
            result, new = self._store.refund_once(
                order_id=request.order_id,
                amount_cents=request.amount_cents,
                reason=request.reason,
                idempotency_key=request.idempotency_key,
            )
        except OrderNotFound as err:
            record_refund(NOT_FOUND)
            raise ApplicationError(str(err), type=ORDER_NOT_FOUND, non_retryable=True) from err
        except InvalidRefund as err:
            record_refund(REJECTED)
            raise ApplicationError(str(err), type=INVALID_REFUND, non_retryable=True) from err
        record_refund(REFUNDED if new else DUPLICATE)
        activity.logger.info(
            "refund %s on order %s: %d %s",
            result.refund_id,
            result.order_id,
            result.amount_cents,
            result.currency,
        )
        return result
