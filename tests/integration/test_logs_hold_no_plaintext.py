"""No process log holds the plaintext of a prompt, a retrieved document or a card number.

Payload encryption only protects what stays in payloads: a worker that logs a request, an
exception that quotes a model's input, a server that prints a body it refused would put the
plaintext next to the ciphertext, in files with none of the codec server's access control. This
test sends distinctive markers through real traffic on the session stack (the `make demo` path:
ingestion, a knowledge question answered from a retrieved document, an order lookup through
Nexus, a refund approved by a person, a system check; the provider faults of test_agent_faults
and a failing workflow; auditors decoding through the codec server), proves that each marker
really went through (the decoded histories of its workflows hold it), then reads every file in
the stack's log directory: the Temporal server, the model server, the codec server (and its audit
log), the Go retrieval worker, the business and agent workers, Prometheus. Run in the full suite,
the scan also covers what every earlier test of the session logged (the system prompt and the
card number are the same in every run).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import client_for, codec_server_decode
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError

from agent.chat.client import Conversations
from agent.ingest.command import expand
from agent.ingest.types import OUTCOME_FAILED, IngestInput
from agent.queues import AGENT_TASK_QUEUE
from agent.support.prompts import SYSTEM_PROMPT
from agent.support.types import ConversationSettings, ConversationStart
from agent.workflows.ingest import IngestWorkflow
from agent.workflows.system_check import SystemCheckInput, SystemCheckWorkflow
from devstack.stack import Stack
from keyops.history import iter_payloads
from modelserver.testing import SimulatorHandle
from payload_codec import EncryptionCodec, FileKeySource

# One run's markers: unique words, so that nothing but this test's traffic can contain them.
RUN = uuid.uuid4().hex[:8]
TERM = f"quokkazephyr{RUN}"
DOCUMENT_SENTENCE = f"The {TERM} lighthouse clause says every ninth heron is painted violet."
QUESTION = f"What does the {TERM} lighthouse clause say about herons?"
CARD_NUMBER = "4111 1111 1111 1111"
CARD_MESSAGE = f"My card {CARD_NUMBER} was charged twice for ORD-1005, where is that order? ref {RUN}"
FAULTED_MESSAGE = f"Please help, {TERM} card {CARD_NUMBER} declined"
REFUND_MESSAGE = f"Please refund €1 on order ORD-1005, paid with card {CARD_NUMBER} (ref {RUN})"
CHECK_QUESTION = f"Is the {TERM} warranty transferable?"
MISSING_ORDER = "ORD-4040"


def spellings(text: str) -> dict[str, bytes]:
    """``text`` as a log could hold it: as is, JSON-escaped (``€`` as ``\\u20ac``, as payloads
    hold it), without the spaces (a card number), and base64 at each of the three alignments a
    longer base64 string could put it at (a logged payload or request body)."""
    raw = text.encode()
    found = {"as is": raw, "JSON-escaped": json.dumps(text)[1:-1].encode(), "without spaces": raw.replace(b" ", b"")}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        # Drop the characters that mix in the padding bytes before, and the last partial group.
        start = (shift * 4 + 2) // 3
        end = (len(encoded) - 4) if (shift + len(raw)) % 3 else len(encoded)
        found[f"base64+{shift}"] = encoded[start:end]
    return found


MARKERS = {
    "a customer's message (prompt)": CARD_MESSAGE,
    "a message sent while the model failed (prompt)": FAULTED_MESSAGE,
    "a system check question (prompt)": CHECK_QUESTION,
    "a refund request that waits for a person (prompt)": REFUND_MESSAGE,
    "the agent's system prompt": SYSTEM_PROMPT,
    "a retrieved document's sentence": DOCUMENT_SENTENCE,
    "a card number": CARD_NUMBER,
}


def log_files(stack: Stack) -> Iterator[Path]:
    return (p for p in sorted(stack.config.log_dir.rglob("*")) if p.is_file())


def leaks(files: list[Path], markers: dict[str, str]) -> list[str]:
    """One line per marker spelling found in a file, with where it was."""
    found = []
    for path in files:
        data = path.read_bytes()
        for what, text in markers.items():
            for spelling, needle in spellings(text).items():
                at = data.find(needle)
                if at >= 0:
                    line = data.count(b"\n", 0, at) + 1
                    found.append(f"{path.name}:{line}: {what} ({spelling})")
    return found


@pytest.fixture(scope="module")
def sim(stack: Stack) -> Iterator[SimulatorHandle]:
    handle = SimulatorHandle(f"http://{stack.config.host}:{stack.config.ports['model_server']}")
    yield handle
    handle.clear_faults()


async def _ingest_document(client: Client, directory: Path) -> None:
    path = directory / f"lighthouse-{RUN}.md"
    path.write_text(f"# Lighthouse clause\n\n{DOCUMENT_SENTENCE}\n")
    result = await client.execute_workflow(
        IngestWorkflow.run,
        IngestInput(paths=expand([str(path)])),
        id=f"leak-ingest-{RUN}",
        task_queue=AGENT_TASK_QUEUE,
    )
    assert not [d for d in result.documents if d.outcome == OUTCOME_FAILED], result.documents


async def _conversation(conversations: Conversations, name: str, **settings: object) -> str:
    return await conversations.start(
        # ORD-1005 is Edsger's (67 EUR): the refund here is 1 EUR, as each system check's.
        ConversationStart(customer="leak test", settings=ConversationSettings(**settings), customer_id="cust-edsger"),  # type: ignore[arg-type]
        f"leak-{name}-{RUN}",
    )


async def _faulted_turns(sim: SimulatorHandle, conversations: Conversations) -> str:
    """The fault kinds of test_agent_faults, each on a message that holds markers."""
    cid = await _conversation(conversations, "faults", model_timeout_s=2, model_max_attempts=3, cooldown_s=1)
    for rule, error in (
        ({"kind": "bad_request"}, "model_rejected"),
        ({"kind": "context_length"}, "context_length"),
        ({"kind": "server_error", "status": 503, "times": 2}, None),  # retried, then answered
        ({"kind": "rate_limit", "retry_after": 1}, None),
        ({"kind": "slow", "delay_s": 3}, None),  # past model_timeout_s: retried
    ):
        sim.set_faults([{"times": 1, **rule, "match": cid}])
        reply = await conversations.send(cid, FAULTED_MESSAGE)
        assert reply.error == error, (rule, reply.error)
    sim.clear_faults()
    return cid


@pytest.fixture(scope="module")
async def traffic(stack: Stack, sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    client = await client_for(stack, "agents")
    conversations = Conversations(client)
    await _ingest_document(client, tmp_path_factory.mktemp("leak-documents"))

    cid = await _conversation(conversations, "plain")
    answer = await conversations.send(cid, QUESTION)
    assert answer.error is None and f"lighthouse-{RUN}" in [c.doc_id for c in answer.citations], answer
    lookup = await conversations.send(cid, CARD_MESSAGE)
    assert lookup.error is None and "ORD-1005" in lookup.text, lookup

    # As in `agent demo`: a refund above the approval threshold waits for a person, who approves.
    refund = await _conversation(conversations, "refund", approval_threshold_cents=50)
    reply = await conversations.send(refund, REFUND_MESSAGE)
    assert reply.approvals_requested == ["APR-1"], reply.text
    outcome = await conversations.decide(refund, "APR-1", approve=True, approver="leak-test-lead", note="checked")
    assert outcome.refund_id, outcome

    faulted = await _faulted_turns(sim, conversations)

    await client.execute_workflow(
        SystemCheckWorkflow.run,
        SystemCheckInput(question=CHECK_QUESTION, order_id="ORD-1005", refund_cents=100),
        id=f"leak-check-{RUN}",
        task_queue=AGENT_TASK_QUEUE,
    )
    with pytest.raises(WorkflowFailureError):
        await client.execute_workflow(
            SystemCheckWorkflow.run,
            SystemCheckInput(question=CHECK_QUESTION, order_id=MISSING_ORDER, refund_cents=100),
            id=f"leak-check-failed-{RUN}",
            task_queue=AGENT_TASK_QUEUE,
        )

    # Auditors read the conversation through the codec server, and one payload it must refuse.
    raw = await Client.connect(stack.temporal_address, namespace="agents")  # no codec: ciphertext
    payloads = list(iter_payloads((await raw.get_workflow_handle(cid).fetch_history()).events))
    status, body = codec_server_decode(stack, "agents", payloads)
    assert status == 200 and CARD_NUMBER.encode() in b"".join(
        base64.b64decode(p["data"]) for p in json.loads(body)["payloads"]
    )
    tampered = Payload(metadata=payloads[0].metadata, data=b"\0" * 40)
    status, _ = codec_server_decode(stack, "agents", [tampered])
    assert status == 422
    return {"conversation": cid, "refund": refund, "faulted": faulted, "check": f"leak-check-{RUN}"}


async def test_markers_went_through_the_system(stack: Stack, traffic: dict[str, str]) -> None:
    """The scan below means something only if every marker was really processed: each is in the
    decoded histories of this test's workflows (model calls, Nexus results, workflow inputs)."""
    client = await client_for(stack, "agents")
    codec = EncryptionCodec(FileKeySource(stack.config.keyring_path).load(), "agents")
    decoded = b""
    for workflow_id in traffic.values():
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        decoded += b"\n".join(p.data for p in codec.decode_sync(iter_payloads(history.events)))
    for what, text in MARKERS.items():
        assert any(needle in decoded for needle in spellings(text).values()), f"{what} is in no history"


def test_no_log_holds_a_prompt_a_document_or_a_card_number(stack: Stack, traffic: dict[str, str]) -> None:
    files = list(log_files(stack))
    names = {p.name for p in files}
    # Every process of the stack wrote its log here, so "found nowhere" covers all of them.
    missing = [n for n in stack.process_names() if f"{n}.log" not in names]
    assert not missing, f"no log file for {missing} in {stack.config.log_dir}"
    assert "codec-audit.jsonl" in names
    found = leaks(files, MARKERS)
    assert not found, "plaintext in the stack's logs:\n" + "\n".join(found)


def test_the_scan_finds_a_planted_marker(tmp_path: Path) -> None:
    """The scanner itself: a marker written as is, or inside a base64 body, is found."""
    body = base64.b64encode(json.dumps({"message": CARD_MESSAGE}).encode()).decode()
    (tmp_path / "worker.log").write_text(f"INFO request body={body}\nWARN card {CARD_NUMBER.replace(' ', '')}\n")
    found = leaks([tmp_path / "worker.log"], {"message": CARD_MESSAGE, "card": CARD_NUMBER})
    assert "worker.log:1: message (base64" in found[0]
    assert "worker.log:2: card (without spaces)" in found
