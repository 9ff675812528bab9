"""OpenTelemetry tracing for workers and clients, switched on by the standard ``OTEL_*`` variables.

Nothing is set up, and nothing leaves the process, unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (or ``OTEL_TRACES_EXPORTER=otlp`` asks for the
default ``http://localhost:4318``). ``OTEL_TRACES_EXPORTER=none`` and ``OTEL_SDK_DISABLED=true``
switch it off again. Spans go out as OTLP over HTTP/protobuf; the exporter itself reads the
headers, timeout and TLS settings, and ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` name
the process (default: the name the process passes to :func:`configure_tracing`).

Once configured, :func:`workerkit.connect.connect` adds Temporal's ``TracingInterceptor`` to
the client, and so to every worker built on it: the trace context travels in Temporal headers
(workflows, activities) and Nexus request headers, where the Go retrieval worker's interceptor
(``services/retrieval-go/app/tracing``) picks it up, so one trace runs from the client through
both languages.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes, server_attributes
from temporalio import client as temporal_client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.exceptions import ApplicationError

from workerkit.errors import ConfigError

_PROTOCOL = "http/protobuf"
_TRACER_NAME = "workerkit"

_provider: TracerProvider | None = None


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for OTLP trace export; a value this process cannot honour
    raises :class:`ConfigError` rather than silently tracing nothing."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    if exporter not in ("", "otlp"):
        raise ConfigError(f"OTEL_TRACES_EXPORTER={exporter!r} is not supported; use otlp or none")
    # The SDK's own default is OTLP to localhost, but an unset environment must not make every
    # dev stack process dial a collector nobody runs.
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint and not exporter:
        return False
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or _PROTOCOL
    ).strip()
    if protocol != _PROTOCOL:
        raise ConfigError(
            f"OTLP protocol {protocol!r} is not supported by the Python processes; "
            f"set OTEL_EXPORTER_OTLP_PROTOCOL={_PROTOCOL} (collectors listen for it on port 4318)"
        )
    return True


def configure_tracing(default_service_name: str) -> bool:
    """Install the global tracer provider if the environment asks for export; returns whether
    tracing is on. Calling it again keeps the first configuration."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_requested():
        return False
    resource = Resource.create()
    # Resource.create fills in "unknown_service..." when OTEL_* name nothing; a per-process
    # default tells the agent, business and CLI spans apart in a trace view.
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def _tracer() -> trace.Tracer:
    # The global provider can be set only once per process; ours is used directly so that a
    # process that configures tracing again (tests) does not write to a provider shut down.
    return (_provider or trace.get_tracer_provider()).get_tracer(_TRACER_NAME)


def tracing_interceptors() -> list[temporal_client.Interceptor]:
    """The Temporal client interceptors to install: none unless :func:`configure_tracing` ran
    and switched tracing on."""
    if _provider is None:
        return []
    return [TracingInterceptor(_tracer())]


def shutdown_tracing() -> None:
    """Export the spans still buffered (a batch is sent every few seconds otherwise) and stop.
    Call it once the workers have drained, so the last tasks' spans are not lost."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


@contextlib.contextmanager
def traced_command(default_service_name: str, name: str) -> Iterator[None]:
    """Run a client command under one root span (when tracing is requested), so everything it
    starts on the server shares one trace, and flush the spans before the process exits."""
    if not configure_tracing(default_service_name):
        yield
        return
    try:
        with _tracer().start_as_current_span(name, kind=trace.SpanKind.CLIENT):
            yield
    finally:
        shutdown_tracing()


@contextlib.contextmanager
def model_call_span(operation: str, request_model: str, base_url: str) -> Iterator[trace.Span]:
    """A span around one model API request with the OpenTelemetry GenAI semantic-convention
    attributes (``operation`` is ``chat`` or ``embeddings``). Callers add the response with
    :func:`record_model_response`. Prompts and answers are never recorded: they may hold
    personal data, and traces are kept and shared more widely than workflow histories."""
    url = urllib.parse.urlsplit(base_url)
    attributes: dict[str, str | int] = {
        gen_ai.GEN_AI_OPERATION_NAME: operation,
        gen_ai.GEN_AI_PROVIDER_NAME: gen_ai.GenAiProviderNameValues.OPENAI.value,
        # Older backends group GenAI spans by the deprecated name.
        gen_ai.GEN_AI_SYSTEM: gen_ai.GenAiSystemValues.OPENAI.value,
        gen_ai.GEN_AI_REQUEST_MODEL: request_model,
    }
    if url.hostname:
        attributes[server_attributes.SERVER_ADDRESS] = url.hostname
    if url.port:
        attributes[server_attributes.SERVER_PORT] = url.port
    # Exceptions are recorded by type only: provider error messages can quote the request.
    with _tracer().start_as_current_span(
        f"{operation} {request_model}",
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as err:
            error_type = err.type if isinstance(err, ApplicationError) and err.type else type(err).__qualname__
            span.set_attribute(error_attributes.ERROR_TYPE, error_type)
            span.set_status(trace.StatusCode.ERROR)
            raise


def record_model_response(
    span: trace.Span,
    response_model: str,
    input_tokens: int,
    output_tokens: int | None = None,
    finish_reasons: Sequence[str] = (),
) -> None:
    """Add what the provider answered with to a :func:`model_call_span` span."""
    span.set_attribute(gen_ai.GEN_AI_RESPONSE_MODEL, response_model)
    span.set_attribute(gen_ai.GEN_AI_USAGE_INPUT_TOKENS, input_tokens)
    if output_tokens is not None:
        span.set_attribute(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
    if finish_reasons:
        span.set_attribute(gen_ai.GEN_AI_RESPONSE_FINISH_REASONS, list(finish_reasons))
