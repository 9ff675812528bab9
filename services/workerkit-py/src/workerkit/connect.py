"""Temporal client construction from Temporal's standard environment configuration."""

from __future__ import annotations

import os

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

DEFAULT_ADDRESS = "localhost:7233"


class ConfigError(ValueError):
    """A setting (environment variable, file) is missing or malformed; the message says which."""


class TemporalUnreachable(RuntimeError):
    """The Temporal server named by the environment configuration could not be reached."""


async def connect(default_namespace: str) -> Client:
    """Connect to the server named by ``TEMPORAL_*`` env vars or the active TOML profile.

    ``default_namespace`` applies only when neither the environment nor the profile names
    one, so each worker lands in its own namespace on a dev stack without extra settings.
    """
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if not os.environ.get("TEMPORAL_NAMESPACE") and "namespace" not in config:
        config["namespace"] = default_namespace
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
