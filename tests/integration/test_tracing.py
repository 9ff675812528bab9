"""One OpenTelemetry trace across the CLI, the Python workers, Nexus and the Go worker.

The test runs its own OTLP/HTTP receiver, starts a stack whose processes inherit
``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at it, runs ``agent check`` as a person does, and reads
the spans every process exported. The other tests run without ``OTEL_*`` and check that then
nothing is set up.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import running_stack
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agent.testing import eventually
from devstack.stack import Stack
from workerkit import ConfigError
from workerkit.tracing import configure_tracing, tracing_interceptors, tracing_requested

OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
)


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, object]


def _value(v: AnyValue) -> object:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class OTLPReceiver(ThreadingHTTPServer):
    """Accepts ``POST /v1/traces`` (OTLP/HTTP protobuf) and keeps the decoded spans."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.lock = threading.Lock()
        self.spans: list[Span] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def collected(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: OTLPReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_error(404)
            return
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                spans += [
                    Span(
                        service=str(resource.get("service.name")),
                        name=s.name,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in s.attributes},
                    )
                    for s in scope_spans.spans
                ]
        with self.server.lock:
            self.server.spans += spans
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    server = OTLPReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def traced_stack(receiver: OTLPReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: every process (and the CLI run below) inherits the OTEL_* settings."""
    with pytest.MonkeyPatch.context() as env:
        for name in OTEL_VARIABLES:
            env.delenv(name, raising=False)
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        # Export batches every 200 ms (Python and Go SDKs both read it) instead of every 5 s.
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
        with running_stack(tmp_path_factory.mktemp("traced-stack")) as stack:
            yield stack


def _one(spans: list[Span], service: str, name: str) -> Span:
    found = [s for s in spans if s.service == service and s.name == name]
    assert found, f"no span {name!r} from {service}; got {sorted({(s.service, s.name) for s in spans})}"
    return found[0]


async def test_one_trace_runs_from_the_cli_through_python_nexus_and_go(
    traced_stack: Stack, receiver: OTLPReceiver
) -> None:
    workflow_id = f"test-traced-check-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-m", "agent", "check", "--workflow-id", workflow_id],
        env={**os.environ, **traced_stack.client_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    # The CLI flushed its spans before exiting; the root span names the command.
    roots = [s for s in receiver.collected() if s.service == "agent-cli" and s.name == "agent check"]
    assert len(roots) == 1 and not roots[0].parent_span_id
    trace_id = roots[0].trace_id

    expected = [
        ("agent-cli", "StartWorkflow:SystemCheckWorkflow"),
        ("agent-worker", "RunWorkflow:SystemCheckWorkflow"),
        ("agent-worker", "StartNexusOperation:retrieval/search"),
        ("retrieval-worker", "RunStartNexusOperationHandler:retrieval/search"),
        ("agent-worker", "StartNexusOperation:business/get_order"),
        ("business-worker", "RunStartNexusOperationHandler:business/get_order"),
        # The refund is a workflow-run operation: its workflow joins the trace too.
        ("business-worker", "RunStartNexusOperationHandler:business/refund"),
        ("business-worker", "RunWorkflow:RefundWorkflow"),
        ("agent-worker", "RunActivity:chat_completion"),
    ]

    def in_trace() -> list[Span]:
        return [s for s in receiver.collected() if s.trace_id == trace_id]

    def missing() -> list[tuple[str, str]]:
        present = {(s.service, s.name) for s in in_trace()}
        return [e for e in expected if e not in present]

    async def complete() -> bool:
        return not missing()

    # Workers export in batches; the last spans may arrive a little after the CLI returned.
    try:
        await eventually(complete, 30, f"every hop's span in trace {trace_id}")
    except AssertionError:
        present = sorted({(s.service, s.name) for s in in_trace()})
        pytest.fail(f"missing from trace {trace_id}: {missing()}; present: {present}")
    spans = in_trace()

    # The Go handler span is the child of the Python workflow's Nexus call: the context crossed
    # the Nexus request headers, not just the same trace id by luck.
    caller = _one(spans, "agent-worker", "StartNexusOperation:retrieval/search")
    handler = _one(spans, "retrieval-worker", "RunStartNexusOperationHandler:retrieval/search")
    assert handler.parent_span_id == caller.span_id

    # The model call carries the GenAI semantic-convention attributes, and no text.
    run_activity = _one(spans, "agent-worker", "RunActivity:chat_completion")
    chat = next(s for s in spans if s.name.startswith("chat ") and s.parent_span_id == run_activity.span_id)
    attrs = chat.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "openai"
    assert chat.name == f"chat {attrs['gen_ai.request.model']}"
    assert attrs["gen_ai.response.model"]
    assert isinstance(attrs["gen_ai.usage.input_tokens"], int) and attrs["gen_ai.usage.input_tokens"] > 0
    assert isinstance(attrs["gen_ai.usage.output_tokens"], int) and attrs["gen_ai.usage.output_tokens"] > 0
    assert not [k for k in attrs if any(w in k for w in ("message", "prompt", "content", "completion"))]
    # The query's embedding (hybrid search) is a GenAI span too, with input tokens only.
    embeddings = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "embeddings"]
    assert embeddings and all(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in embeddings)
    assert all(s.name == f"embeddings {s.attributes['gen_ai.request.model']}" for s in embeddings)
    # Every process named itself; none fell back to "unknown_service".
    assert not [s for s in receiver.collected() if s.service.startswith("unknown_service")]


@pytest.fixture
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_otel_env")
def test_nothing_is_configured_or_exported_without_otel_variables() -> None:
    assert not tracing_requested()
    assert configure_tracing("test") is False
    assert tracing_interceptors() == []
    # No SDK provider was installed: spans started anywhere in the process are no-ops.
    assert not trace.get_current_span().get_span_context().is_valid
    with trace.get_tracer("test").start_as_current_span("unexported") as span:
        assert not span.is_recording()


@pytest.mark.parametrize(
    ("env", "requested"),
    [
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_which_variables_switch_tracing_on(env: dict[str, str], requested: bool) -> None:
    assert tracing_requested(env) is requested


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http/protobuf"),
    ],
)
def test_unsupported_settings_are_a_config_error(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        tracing_requested(env)


@pytest.mark.usefixtures("no_otel_env")
def test_the_cli_rejects_an_unsupported_exporter_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "check"],
        env={**os.environ, "OTEL_TRACES_EXPORTER": "zipkin", "TEMPORAL_ADDRESS": "127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "OTEL_TRACES_EXPORTER='zipkin' is not supported" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
