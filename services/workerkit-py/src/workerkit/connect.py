"""Temporal client construction from Temporal's standard environment configuration."""

from __future__ import annotations

import os

from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from workerkit.encryption import payload_data_converter
from workerkit.errors import TemporalUnreachable
from workerkit.metrics import MeterCodecObserver
from workerkit.tracing import tracing_interceptors

DEFAULT_ADDRESS = "localhost:7233"


async def connect(default_namespace: str, runtime: Runtime | None = None) -> Client:
    """Connect to the server named by ``TEMPORAL_*`` env vars or the active TOML profile.

    ``default_namespace`` applies only when neither the environment nor the profile names
    one, so each worker lands in its own namespace on a dev stack without extra settings.
    Payloads are encrypted with the namespace's active key (see :mod:`workerkit.encryption`).
    ``runtime`` is a worker's metrics runtime (:mod:`workerkit.metrics`); the codec reports to it.
    Call :func:`workerkit.tracing.configure_tracing` first for the client to carry traces.
    """
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if not os.environ.get("TEMPORAL_NAMESPACE") and "namespace" not in config:
        config["namespace"] = default_namespace
    observer = MeterCodecObserver(runtime.metric_meter) if runtime is not None else None
    config["data_converter"] = payload_data_converter(config["namespace"], observer)
    if runtime is not None:
        config["runtime"] = runtime
    # Workers built on this client inherit its interceptors, so this one line traces clients,
    # workflows, activities and Nexus handlers alike (empty unless OTEL_* ask for tracing).
    config["interceptors"] = tracing_interceptors()
    try:
        return await Client.connect(**config)
    except RuntimeError as err:
        # The core SDK raises RuntimeError with a long transport trace; keep the one line a
        # person needs, and never the API key (it is not part of the message).
        raise TemporalUnreachable(
            f"cannot reach the Temporal server at {config['target_host']} "
            f"(namespace {config['namespace']}): {str(err).splitlines()[0]}. "
            "Start the dev stack with `make up` or set TEMPORAL_ADDRESS."
        ) from err
