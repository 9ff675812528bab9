"""The one exception type the CLI turns into a sentence and a non-zero exit."""

from __future__ import annotations


class RolloutError(Exception):
    """A rollout step cannot go on; the message is one sentence that says what to do."""
