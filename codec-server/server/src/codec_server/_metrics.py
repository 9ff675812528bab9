"""Prometheus metrics of the codec server. Label values are bounded: namespaces outside the
configured set are counted as ``other`` so a caller cannot create series at will."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from payload_codec import CodecObserver
from payload_codec.observe import BYTES_METRIC, FAILURES_METRIC, OUTCOME_ERROR, OUTCOME_OK, PAYLOADS_METRIC, Operation

OTHER = "other"
NONE = "none"


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, namespaces: Iterable[str]) -> None:
        self.namespaces = frozenset(namespaces)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "codec_server_requests",
            "Codec requests by operation, namespace and outcome.",
            ["operation", "namespace", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "codec_server_request_duration_seconds",
            "Time to answer a codec request, from first byte read to response.",
            ["operation"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.payloads = Counter(
            "codec_server_payloads",
            "Payloads encoded or decoded successfully.",
            ["operation", "namespace"],
            registry=self.registry,
        )
        self.bytes = Counter(
            "codec_server_payload_bytes",
            "Payload data bytes processed, by direction (in: request, out: response).",
            ["operation", "namespace", "direction"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "codec_server_auth_failures",
            "Requests refused by authentication or authorization, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.codec = PrometheusCodecObserver(self.registry)

    def namespace_label(self, namespace: str | None) -> str:
        if namespace is None:
            return NONE
        return namespace if namespace in self.namespaces else OTHER

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PrometheusCodecObserver(CodecObserver):
    """The codec library's own metrics (the names every worker exports too), per key id."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.payloads = Counter(
            PAYLOADS_METRIC,
            "Payloads encrypted or decrypted, by outcome.",
            ["operation", "key_id", "outcome"],
            registry=registry,
        )
        self.bytes = Counter(
            BYTES_METRIC, "Ciphertext bytes produced or opened.", ["operation", "key_id"], registry=registry
        )
        self.failures = Counter(
            FAILURES_METRIC,
            "Payloads the codec could not process, by reason.",
            ["operation", "key_id", "reason"],
            registry=registry,
        )

    def succeeded(self, operation: Operation, key_id: str, size: int) -> None:
        self.payloads.labels(operation, key_id, OUTCOME_OK).inc()
        self.bytes.labels(operation, key_id).inc(size)

    def failed(self, operation: Operation, key_id: str, reason: str) -> None:
        self.payloads.labels(operation, key_id, OUTCOME_ERROR).inc()
        self.failures.labels(operation, key_id, reason).inc()
