"""Prometheus metrics of a worker process: the Temporal SDK's and the project's own, on one port.

The core SDK's exporter serves ``/metrics``. It is configured so that its names are the Go
worker's (``services/retrieval-go/app/metrics``): counters end in ``_total``, durations are
histograms in seconds whose names end in ``_seconds``, and no ``service_name`` label, so one
dashboard query covers both languages. Custom metrics go through Temporal's meters
(``activity.metric_meter()``, ``workflow.metric_meter()``, or :func:`process_meter` for
process-level values) and come out of the same exporter. The catalogue of every name is
``ops/metrics/catalogue.yaml``.

Only worker processes (``run_workers``) create this runtime; CLI clients keep the default one
and serve nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta

from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from payload_codec import CodecObserver
from payload_codec.observe import BYTES_METRIC, FAILURES_METRIC, OUTCOME_ERROR, OUTCOME_OK, PAYLOADS_METRIC, Operation
from workerkit.deployment import ENV_BUILD_ID, ENV_DEPLOYMENT_NAME
from workerkit.errors import ConfigError
from workerkit.settings import port_setting

ENV_METRICS_HOST = "METRICS_HOST"
DEFAULT_METRICS_HOST = "127.0.0.1"
# Worker Deployment Versioning: when set, every series of the process carries the version, so
# an error rate can be split by it during a rollout.
CONSTANT_LABEL_ENV = {"build_id": ENV_BUILD_ID, "deployment_name": ENV_DEPLOYMENT_NAME}

# Buckets of the custom histograms, keyed by the name given to the meter (before the exporter
# adds ``_seconds``). The exporter's default buckets stop at 10 s; model calls and human
# approvals take far longer.
_MODEL_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
_HUMAN_SECONDS = (10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600)
_USD = (0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1)
# The Go worker's timer buckets (app/metrics temporalBuckets): a handler-latency panel sums both.
_NEXUS_HANDLER_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
HISTOGRAM_BUCKETS: dict[str, Sequence[float]] = {
    "agent_model_request_duration": _MODEL_SECONDS,
    "nexus_handler_operation_latency": _NEXUS_HANDLER_SECONDS,
    "agent_approval_wait": _HUMAN_SECONDS,
    "agent_model_cost_usd": _USD,
}

_runtime: Runtime | None = None


def constant_labels(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    return {label: value for label, env in CONSTANT_LABEL_ENV.items() if (value := environ.get(env, "").strip())}


def metrics_address(port_env: str, default_port: int, environ: Mapping[str, str] = os.environ) -> str:
    host = environ.get(ENV_METRICS_HOST, DEFAULT_METRICS_HOST)
    return f"{host}:{port_setting(port_env, default_port, env=environ)}"


def metrics_runtime(address: str, environ: Mapping[str, str] = os.environ) -> Runtime:
    """A runtime serving ``http://{address}/metrics``; remembered for :func:`process_meter`."""
    global _runtime
    config = PrometheusConfig(
        bind_address=address,
        counters_total_suffix=True,
        durations_as_seconds=True,
        unit_suffix=True,
        histogram_bucket_overrides=HISTOGRAM_BUCKETS,
    )
    try:
        _runtime = Runtime(
            telemetry=TelemetryConfig(metrics=config, global_tags=constant_labels(environ), attach_service_name=False)
        )
    except ValueError as err:
        # The exporter's message ends in the OS error ("Address already in use (os error 98)").
        raise ConfigError(
            f"cannot serve metrics on {address}: {str(err).removeprefix('Failed starting Prometheus exporter: ')}; "
            f"stop the other process or choose another port"
        ) from None
    return _runtime


def process_meter() -> MetricMeter:
    """The meter of the process's metrics runtime (a no-op meter outside a worker process)."""
    return _runtime.metric_meter if _runtime is not None else MetricMeter.noop


class MeterCodecObserver(CodecObserver):
    """Codec metrics (``codec_payloads_total`` ...) through a Temporal meter."""

    def __init__(self, meter: MetricMeter) -> None:
        self._payloads = meter.create_counter(PAYLOADS_METRIC, "Payloads encrypted or decrypted, by outcome.")
        self._bytes = meter.create_counter(BYTES_METRIC, "Ciphertext bytes produced or opened.")
        self._failures = meter.create_counter(FAILURES_METRIC, "Payloads the codec could not process, by reason.")

    def succeeded(self, operation: Operation, key_id: str, size: int) -> None:
        labels = {"operation": operation, "key_id": key_id}
        self._payloads.add(1, {**labels, "outcome": OUTCOME_OK})
        self._bytes.add(size, labels)

    def failed(self, operation: Operation, key_id: str, reason: str) -> None:
        labels = {"operation": operation, "key_id": key_id}
        self._payloads.add(1, {**labels, "outcome": OUTCOME_ERROR})
        self._failures.add(1, {**labels, "reason": reason})


def since(start: float, end: float) -> timedelta:
    """A non-negative duration for a timer histogram (clocks can step back)."""
    return timedelta(seconds=max(end - start, 0.0))
