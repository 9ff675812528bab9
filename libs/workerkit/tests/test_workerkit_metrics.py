"""The worker metrics runtime: Go-compatible names, version labels, one clear error per bad setting."""

from __future__ import annotations

import socket
import urllib.request
from datetime import timedelta

import pytest

from workerkit.errors import ConfigError
from workerkit.metrics import metrics_address, metrics_runtime, process_meter


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_names_and_version_labels() -> None:
    address = f"127.0.0.1:{free_port()}"
    metrics_runtime(address, {"TEMPORAL_WORKER_BUILD_ID": "b7", "TEMPORAL_DEPLOYMENT_NAME": "agents"})
    meter = process_meter()
    meter.create_counter("workerkit_test_events").add(2, {"kind": "a"})
    meter.create_histogram_timedelta("agent_model_request_duration").record(timedelta(seconds=25))
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        text = response.read().decode()
    # _total on counters and _seconds on durations, as the Go worker names them; no service_name.
    assert 'workerkit_test_events_total{kind="a",build_id="b7",deployment_name="agents"} 2' in text
    assert 'agent_model_request_duration_seconds_bucket{build_id="b7",deployment_name="agents",le="30"} 1' in text
    assert "service_name" not in text


def test_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]:d}"
        with pytest.raises(ConfigError) as err:
            metrics_runtime(address, {})
    assert str(err.value).startswith(f"cannot serve metrics on {address}: Address already in use")


@pytest.mark.parametrize("raw", ["", "http", "0", "70000"])
def test_bad_port_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="AGENT_METRICS_PORT must be a port number"):
        metrics_address("AGENT_METRICS_PORT", 8413, {"AGENT_METRICS_PORT": raw})
    assert metrics_address("AGENT_METRICS_PORT", 8413, {"METRICS_HOST": "0.0.0.0"}) == "0.0.0.0:8413"
