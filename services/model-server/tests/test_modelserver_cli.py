"""``python -m modelserver`` as a real process: start-up, auth, logging, port conflicts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelserver.__main__ import main

SECRET = "sk-sim-very-secret-key"
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/v1")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_SERVER_")}
    env.update(extra)
    return env


@contextmanager
def server_process(log: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelserver", "--port", "0"], stdout=sink, stderr=subprocess.STDOUT, env=_env(**env)
        )
    try:
        deadline = time.monotonic() + 10
        while not (match := LISTENING.search(log.read_text())):
            assert process.poll() is None, f"server exited early: {log.read_text()}"
            assert time.monotonic() < deadline, "server did not report its port within 10 s"
            time.sleep(0.05)
        yield process, f"http://127.0.0.1:{match.group(1)}/v1"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "modelserver", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env=_env(),
            check=False,
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port}" in lines[0] and "already in use" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MODEL_SERVER_FAULTS": '[{"kind": "meteor"}]'}, "MODEL_SERVER_FAULTS"),
        ({"MODEL_SERVER_FAULTS": "[{kind: rate_limit}]"}, "MODEL_SERVER_FAULTS is not valid JSON"),
        ({"MODEL_SERVER_PORT": "eighty"}, "MODEL_SERVER_PORT"),
        ({"MODEL_SERVER_LEDGER_PATH": "/proc/no-such-dir/ledger.jsonl"}, "MODEL_SERVER_LEDGER_PATH"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    env: dict[str, str], needle: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process: these paths return before anything is served, and a subprocess each would be slow.
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def must_not_serve(*_: object) -> None:
        raise AssertionError("a bad configuration must stop before serving")

    monkeypatch.setattr("modelserver.__main__.serve", must_not_serve)
    argv = [] if "MODEL_SERVER_PORT" in env else ["--port", "0"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err, err


def test_process_with_env_config_auth_and_ledger_file(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    log = tmp_path / "server.log"
    secret_message = "my password is hunter2"
    with server_process(
        log,
        MODEL_SERVER_FAULTS='[{"kind": "server_error", "status": 503, "times": 1}]',
        MODEL_SERVER_LEDGER_PATH=str(ledger),
        MODEL_SERVER_API_KEY=SECRET,
    ) as (process, base_url):
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": secret_message}]
        with openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0) as intruder:
            with pytest.raises(openai.AuthenticationError):
                intruder.chat.completions.create(model="sim-gpt", messages=messages)
            with pytest.raises(openai.AuthenticationError):
                intruder.models.list()
        with openai.OpenAI(base_url=base_url, api_key=SECRET, max_retries=0) as c:
            with pytest.raises(openai.InternalServerError):
                c.chat.completions.create(model="sim-gpt", messages=messages)
            answer = c.chat.completions.create(
                model="sim-gpt",
                messages=messages,
                extra_headers={"X-Request-Key": "wf-9/llm/1"},
            )
            assert answer.choices[0].finish_reason == "stop"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0

    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [(e["status"], e["outcome"], e["fault"]) for e in entries] == [
        (401, "invalid_api_key", None),
        (503, "server_error", "server_error"),
        (200, "ok", None),
    ]
    assert entries[-1]["request_key"] == "wf-9/llm/1"

    text = log.read_text()
    assert "SIMULATOR" in text and "stopped" in text
    assert re.search(r"POST /v1/chat/completions 401 [\d.]+ms", text)
    assert re.search(r"POST /v1/chat/completions 503 [\d.]+ms", text)
    assert re.search(r"GET /v1/models 401 [\d.]+ms", text)
    assert SECRET not in text and "hunter2" not in text and "Traceback" not in text


def test_ctrl_c_stops_the_server_cleanly(tmp_path: Path) -> None:
    # SIGTERM is covered by the end-to-end process test above.
    log = tmp_path / "server.log"
    with server_process(log) as (process, _):
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    text = log.read_text()
    assert "stopped" in text and "Traceback" not in text
