"""Errors a person can act on: each message is one sentence naming what to fix."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


class ConfigError(ValueError):
    """A setting (environment variable, file) is missing or malformed; the message says which."""


class TemporalUnreachable(RuntimeError):
    """The Temporal server named by the environment configuration could not be reached."""


def root_cause(err: BaseException) -> BaseException:
    """The innermost failure under Temporal's wrappers.

    A client's ``WorkflowFailureError``, and in workflow code an ``ActivityError``,
    ``ChildWorkflowError`` or ``NexusOperationError``, say only where something failed; what
    failed is the end of their ``cause`` chain. Pure, so workflow code may call it.
    """
    while (inner := getattr(err, "cause", None)) is not None:
        err = inner
    return err


def root_message(err: BaseException) -> str:
    """The sentence a person should read about ``err``: the innermost ``ApplicationError``'s
    message (``str()`` would prefix its type), else the innermost failure as text."""
    cause = root_cause(err)
    return cause.message if isinstance(cause, ApplicationError) else str(cause)
