"""Errors of the replay gate, each with a one-sentence message for the operator."""

from __future__ import annotations


class ReplayGateError(Exception):
    """Bad input or an unusable corpus, cluster or key ring: the message says which."""
