"""Replay gate: recorded histories replayed against the current workflow code (docs/versioning.md)."""

__version__ = "0.1.0"
