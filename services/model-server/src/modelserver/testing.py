"""Run the simulator inside a test process, on a free port, for as long as a ``with`` block.

    from modelserver.testing import running_simulator

    with running_simulator() as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0)
        ...
        assert len(sim.ledger()) == 1

The server is real uvicorn on a real socket, so clients exercise their full HTTP stack. The
admin helpers use only the standard library, leaving the choice of HTTP client to the caller.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from httpkit import bind_socket

from ._app import create_app
from ._settings import PORT_ENV, Settings

STARTUP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SimulatorHandle:
    url: str

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to the openai client (or to set as OPENAI_BASE_URL)."""
        return f"{self.url}/v1"

    def ledger(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/ledger")["calls"])

    def clear_ledger(self) -> None:
        self._call("DELETE", "/ledger")

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/admin/faults")["faults"])

    def set_faults(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self._call("POST", "/admin/faults", rules)["faults"])

    def clear_faults(self) -> None:
        self._call("DELETE", "/admin/faults")

    def reset(self) -> None:
        self.clear_ledger()
        self.clear_faults()

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                result: dict[str, Any] = json.load(response)
                return result
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                detail = exc.reason
            raise ValueError(f"{method} {path} failed with {exc.code}: {detail}") from None


@contextmanager
def running_simulator(settings: Settings | None = None, *, host: str = "127.0.0.1") -> Iterator[SimulatorHandle]:
    sock = bind_socket(host, 0, port_env=PORT_ENV)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    # Signal handlers are only installed from the main thread, so a thread keeps the test's own.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="model-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the model simulator did not start within {STARTUP_TIMEOUT_S:g} s")
        time.sleep(0.01)
    try:
        yield SimulatorHandle(url=f"http://{host}:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
