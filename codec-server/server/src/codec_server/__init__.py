"""Temporal codec server: /encode and /decode with auth, CORS, audit log and metrics."""

from ._app import create_app
from ._audit import AuditLog, AuditRecord
from ._auth import Authenticator, AuthError, JwtVerifier, Principal, StaticTokens
from ._metrics import Metrics
from ._openapi import openapi_document
from ._settings import Settings, SettingsError

__all__ = [
    "AuditLog",
    "AuditRecord",
    "AuthError",
    "Authenticator",
    "JwtVerifier",
    "Metrics",
    "Principal",
    "Settings",
    "SettingsError",
    "StaticTokens",
    "create_app",
    "openapi_document",
]
