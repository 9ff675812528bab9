"""The one exception type the CLI turns into a sentence and a non-zero exit."""

from __future__ import annotations


class KeyOpsError(Exception):
    """An operation cannot go on; the message is one sentence that says what to do.

    Messages name paths, key ids, namespaces and HTTP statuses, never key material or tokens.
    """


class NotFoundError(KeyOpsError):
    """The server does not have it: wrong id, or deleted at the end of retention."""
