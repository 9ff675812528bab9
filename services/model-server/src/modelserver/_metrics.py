"""Prometheus metrics of the simulator: requests by endpoint and status, injected faults by kind.

Useful for fault-injection dashboards: what the simulator did next to what the agent saw.
Label values are bounded: paths map to a fixed set of endpoint names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_ENDPOINTS = {
    "/v1/chat/completions": "chat.completions",
    "/v1/embeddings": "embeddings",
    "/v1/models": "models",
    "/ledger": "ledger",
    "/admin/faults": "admin",
    "/healthz": "health",
    "/metrics": "metrics",
}


def endpoint_of(path: str) -> str:
    if path.startswith("/v1/models/"):
        return "models"
    return _ENDPOINTS.get(path, "other")


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelserver_requests",
            "HTTP requests answered, by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.faults = Counter(
            "modelserver_faults_injected",
            "Faults injected (admin API or MODEL_SERVER_FAULTS), by kind.",
            ["kind", "endpoint"],
            registry=self.registry,
        )
        # Lets a drill (or an operator) see that a model call is running right now, e.g. to kill a
        # worker while one is in flight rather than hoping a random moment finds one.
        self.in_flight = Gauge(
            "modelserver_requests_in_flight",
            "HTTP requests being answered right now, by endpoint.",
            ["endpoint"],
            registry=self.registry,
        )

    def request(self, path: str, status: int) -> None:
        self.requests.labels(endpoint_of(path), str(status)).inc()

    def started(self, path: str) -> None:
        self.in_flight.labels(endpoint_of(path)).inc()

    def finished(self, path: str) -> None:
        self.in_flight.labels(endpoint_of(path)).dec()

    def fault(self, kind: str, endpoint: str) -> None:
        self.faults.labels(kind, endpoint).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
