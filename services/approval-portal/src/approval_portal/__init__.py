"""The approval portal: where support leads see the refunds waiting in agent conversations and
decide them, from a browser or over its HTTP API (services/approval-portal/README.md)."""

from approval_portal.app import create_app
from approval_portal.desk import ApprovalDesk, PendingApproval
from approval_portal.sessions import Sessions

__all__ = ["ApprovalDesk", "PendingApproval", "Sessions", "create_app"]
