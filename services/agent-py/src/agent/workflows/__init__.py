"""Workflow definitions of the ``agents`` namespace. Modules here import no I/O libraries."""
