"""Payload key operations for the encrypting codec (codec-server/SPEC.md): rotate, report, export."""

__version__ = "0.1.0"
