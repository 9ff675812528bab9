"""Temporal client construction from Temporal's standard environment configuration."""

from __future__ import annotations

import asyncio
import os
import re
import time

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from workerkit.encryption import payload_data_converter
from workerkit.errors import ConfigError, TemporalUnreachable
from workerkit.metrics import MeterCodecObserver
from workerkit.nexus_metrics import NexusHandlerMetrics
from workerkit.tracing import tracing_interceptors

DEFAULT_ADDRESS = "localhost:7233"


async def connect(default_namespace: str, runtime: Runtime | None = None, *, patience_s: float = 0.0) -> Client:
    """Connect to the server named by ``TEMPORAL_*`` env vars or the active TOML profile.

    ``default_namespace`` applies only when neither the environment nor the profile names
    one, so each worker lands in its own namespace on a dev stack without extra settings.
    Payloads are encrypted with the namespace's active key (see :mod:`workerkit.encryption`).
    ``runtime`` is a worker's metrics runtime (:mod:`workerkit.metrics`); the codec reports to it.
    ``patience_s``: how long to keep trying to connect while the server is unreachable (a
    client started during a server restart waits for it instead of failing at once).
    Call :func:`workerkit.tracing.configure_tracing` first for the client to carry traces.
    """
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if not os.environ.get("TEMPORAL_NAMESPACE") and "namespace" not in config:
        config["namespace"] = default_namespace
    observer = MeterCodecObserver(runtime.metric_meter) if runtime is not None else None
    # `config` holds only what environment configuration can set (a TypedDict); what the code
    # decides is passed beside it. runtime=None is Client.connect's default (the SDK's runtime).
    data_converter = payload_data_converter(config["namespace"], observer)
    # Workers built on this client inherit its interceptors, so this one line traces clients,
    # workflows, activities and Nexus handlers alike (empty unless OTEL_* ask for tracing), and
    # counts every Nexus handler call per operation.
    interceptors = [*tracing_interceptors(), NexusHandlerMetrics()]
    deadline = time.monotonic() + patience_s
    delay = 0.5
    while True:
        try:
            client = await Client.connect(
                **config, data_converter=data_converter, runtime=runtime, interceptors=interceptors
            )
        except RuntimeError as err:
            if time.monotonic() + delay < deadline:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            failure = err
            break
        else:
            await check_namespace_access(client, config["target_host"])
            return client
    waited = f" for {patience_s:.0f} s" if patience_s else ""
    raise TemporalUnreachable(
        f"cannot reach the Temporal server at {config['target_host']}{waited} "
        f"(namespace {config['namespace']}): {short_reason(failure)}. "
        "Start the dev stack with `make up` or set TEMPORAL_ADDRESS."
    ) from failure


async def connect_without_codec(namespace: str, address: str | None = None) -> Client:
    """A client that sees payloads as the server stores them (no codec): for operator tools that
    read raw histories or call admin APIs. ``address`` overrides the env config's."""
    config = ClientConfig.load_client_connect_config()
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    config["namespace"] = namespace
    try:
        return await Client.connect(**config)
    except RuntimeError as err:
        raise TemporalUnreachable(
            f"cannot reach the Temporal server at {config['target_host']} ({short_reason(err)}); "
            "start the dev stack with `make up` or set TEMPORAL_ADDRESS / --address"
        ) from None


async def check_namespace_access(client: Client, address: str) -> None:
    """Fail at start-up, in one sentence, when the credentials cannot use the namespace.

    Connecting asks the server only for its system info, which any caller may read, so a worker
    whose token (TEMPORAL_API_KEY) lacks its namespace would otherwise start and then fail every
    poll. Describing the namespace needs read access to it: the smallest call that proves access.
    """
    namespace = client.namespace
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    except RPCError as err:
        if err.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED):
            raise ConfigError(
                f"the Temporal server at {address} refused access to namespace {namespace} "
                f"({err.message or 'permission denied'}): the credentials given (TEMPORAL_API_KEY, "
                "the TLS client certificate or the profile) do not grant it; use ones that do"
            ) from None
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ConfigError(
                f"namespace {namespace} does not exist at {address}; create it "
                "(temporal operator namespace create) or set TEMPORAL_NAMESPACE"
            ) from None
        raise


def short_reason(err: Exception) -> str:
    """The core SDK raises RuntimeError with a nested transport trace; the OS's own words are
    what a person needs (and the API key is never part of them)."""
    text = str(err)
    found = re.search(r'message: "([^"]+)"', text)
    reason = found.group(1) if found else text.splitlines()[0][:160]
    if "call error after connection" in text and re.search(r"Transport|transport error|connection closed", text):
        # The TCP connection was made and the first call died in transport: what a server that
        # requires TLS (or a client certificate) does to a client without it, which the core
        # SDK reports only as "transport error" or "operation was canceled".
        reason += (
            "; the server closed the connection, as one that requires TLS or a client certificate does "
            "(check TEMPORAL_TLS_CLIENT_CERT_PATH and the other TEMPORAL_TLS_* settings)"
        )
    return reason
