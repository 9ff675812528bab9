"""/metrics: requests by endpoint and status, injected faults by kind, for fault dashboards."""

from __future__ import annotations

import concurrent.futures
import re
import time
import urllib.error
import urllib.request

import openai
import pytest

from modelserver.testing import SimulatorHandle


def sample(sim: SimulatorHandle, series: str) -> float:
    with urllib.request.urlopen(f"{sim.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_requests_and_injected_faults_are_counted(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    ok = 'modelserver_requests_total{endpoint="chat.completions",status="200"}'
    limited = 'modelserver_requests_total{endpoint="chat.completions",status="429"}'
    fault = 'modelserver_faults_injected_total{endpoint="chat.completions",kind="rate_limit"}'
    before = {s: sample(sim, s) for s in (ok, limited, fault)}
    sim.set_faults([{"kind": "rate_limit", "retry_after": 0, "times": 1}])
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="sim-gpt", messages=[{"role": "user", "content": "hi"}])
    client.chat.completions.create(model="sim-gpt", messages=[{"role": "user", "content": "hi"}])
    assert {s: sample(sim, s) - before[s] for s in before} == {ok: 1, limited: 1, fault: 1}


def test_unknown_paths_share_one_series(sim: SimulatorHandle) -> None:
    # Paths map to a fixed set of names: a caller cannot mint series with made-up URLs.
    other = 'modelserver_requests_total{endpoint="other",status="404"}'
    before = sample(sim, other)
    for path in ("/made-up", "/v2/anything"):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(sim.url + path, timeout=5)
    assert sample(sim, other) - before == 2


def test_a_slow_call_is_in_flight_until_it_is_answered(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    in_flight = 'modelserver_requests_in_flight{endpoint="chat.completions"}'
    sim.set_faults([{"kind": "slow", "delay_s": 1.0, "times": 1}])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(
            client.chat.completions.create, model="sim-gpt", messages=[{"role": "user", "content": "hi"}]
        )
        seen = 0.0
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline and not call.done():
            seen = sample(sim, in_flight)
        assert seen == 1
        call.result()
    assert sample(sim, in_flight) == 0
