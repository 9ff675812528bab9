"""Temporal client construction from Temporal's standard environment configuration."""

from __future__ import annotations

import os

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from workerkit.encryption import payload_data_converter
from workerkit.errors import TemporalUnreachable

DEFAULT_ADDRESS = "localhost:7233"


async def connect(default_namespace: str) -> Client:
    """Connect to the server named by ``TEMPORAL_*`` env vars or the active TOML profile.

    ``default_namespace`` applies only when neither the environment nor the profile names
    one, so each worker lands in its own namespace on a dev stack without extra settings.
    Payloads are encrypted with the namespace's active key (see :mod:`workerkit.encryption`).
    """
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if not os.environ.get("TEMPORAL_NAMESPACE") and "namespace" not in config:
        config["namespace"] = default_namespace
    config["data_converter"] = payload_data_converter(config["namespace"])
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
