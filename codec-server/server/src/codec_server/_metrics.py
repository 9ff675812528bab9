"""Prometheus metrics of the codec server. Label values are bounded: namespaces outside the
configured set are counted as ``other`` so a caller cannot create series at will."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

OTHER = "other"
NONE = "none"
OPERATIONS = frozenset({"decode", "encode"})


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

    def namespace_label(self, namespace: str | None) -> str:
        if namespace is None:
            return NONE
        return namespace if namespace in self.namespaces else OTHER

    @staticmethod
    def operation_label(operation: str) -> str:
        return operation if operation in OPERATIONS else OTHER

    def render(self) -> bytes:
        return generate_latest(self.registry)
