"""Plumbing shared by every Python worker and client of the project.

- :func:`connect` builds a Temporal client from Temporal's environment configuration
  (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, TLS paths, TOML profiles),
  so one binary runs against the dev server, a self-hosted cluster or Temporal Cloud.
- :func:`run_workers` runs workers with health endpoints and a graceful shutdown on SIGTERM.
"""

from workerkit.connect import connect
from workerkit.encryption import payload_data_converter
from workerkit.errors import ConfigError, TemporalUnreachable, root_cause, root_message
from workerkit.run import run_workers

__all__ = [
    "ConfigError",
    "TemporalUnreachable",
    "connect",
    "payload_data_converter",
    "root_cause",
    "root_message",
    "run_workers",
]
