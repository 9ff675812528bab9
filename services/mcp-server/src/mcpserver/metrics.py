"""The MCP server's Prometheus metrics (``/metrics``), listed in ``ops/metrics/catalogue.yaml``."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

OUTCOMES = ("ok", "tool_error", "refused", "error")


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "mcp_tool_calls",
            "MCP tool calls, by tool and outcome (ok, tool_error, refused, error).",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mcp_tool_call_duration_seconds",
            "Time from a tool call's arrival to its answer, workflow included.",
            ["tool"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )

    def observe(self, tool: str, outcome: str, seconds: float) -> None:
        self.calls.labels(tool, outcome if outcome in OUTCOMES else "error").inc()
        self.duration.labels(tool).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
