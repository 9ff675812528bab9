"""``replay-check`` (make replay-check) against a running stack: it exports what ran, encrypted,
replays it in Python and Go, and fails with one line naming a workflow that does not replay."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from agent.chat.client import Conversations
from agent.support.types import ConversationStart
from devstack.stack import Stack
from replaygate.corpus import Corpus

REPO = Path(__file__).resolve().parents[2]
TEST_CORPUS = REPO / "tests" / "replay" / "corpus"
TEST_KEYRING = REPO / "tests" / "replay" / "test-keyring.json"


@pytest.fixture(scope="module")
def go_replayer() -> Path:
    built = REPO / "bin" / "retrieval-replay"
    if not built.is_file():
        pytest.fail(f"{built} is missing; `make build` builds it (make test does)")
    return built


def replay_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CODEC_KEYRING", "TEMPORAL_"))}
    return subprocess.run(
        [sys.executable, "-m", "replaygate", *args],
        env={**environ, **env, "COLUMNS": "240"},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


async def test_replay_check_exports_a_running_stack_and_replays_it(
    stack: Stack, agents_client: Client, go_replayer: Path, tmp_path: Path
) -> None:
    conversations = Conversations(agents_client)
    start = ConversationStart(customer="gate", customer_id="cust-ada")
    ended = await conversations.start(start, f"test-gate-{uuid.uuid4().hex[:8]}")
    await conversations.send(ended, "How long does a refund take?")
    await conversations.end(ended)
    waiting = await conversations.start(start, f"test-gate-{uuid.uuid4().hex[:8]}")
    await conversations.send(waiting, "Hello")

    corpus_dir = tmp_path / "corpus"
    done = replay_check(stack.client_env(), "--corpus", str(corpus_dir), "--go-replayer", str(go_replayer))
    assert done.returncode == 0, done.stdout + done.stderr
    assert ended in done.stdout and waiting in done.stdout
    assert "NON-DETERMINISTIC" not in done.stdout and "FAILED" not in done.stdout

    corpus = Corpus.load(corpus_dir)
    ours = {e.workflow_id: e for e in corpus.entries}
    assert {ended, waiting} <= set(ours)
    assert ours[waiting].note.startswith("replay-check: RUNNING")
    # Stored as the server holds it: ciphertext, no customer text.
    stored = (corpus_dir / ours[ended].file).read_text()
    assert base64.b64encode(b"binary/encrypted").decode() in stored  # payload metadata, as protobuf JSON has it
    assert "How long does a refund take" not in stored

    # Run again: closed runs are kept, open ones are taken again, nothing is lost.
    again = replay_check(stack.client_env(), "--corpus", str(corpus_dir), "--go-replayer", str(go_replayer))
    assert again.returncode == 0, again.stderr
    assert len(Corpus.load(corpus_dir).entries) >= len(corpus.entries)


def tamper_activity_type(text: str, old: str, new: str) -> str:
    """The history a build with another activity in that place would have written."""
    history = json.loads(text)
    for event in history["events"]:
        scheduled = event.get("activityTaskScheduledEventAttributes")
        if scheduled and scheduled["activityType"]["name"] == old:
            scheduled["activityType"]["name"] = new
            return json.dumps(history)
    raise AssertionError(f"no {old} activity in the history")


def test_replay_check_fails_with_one_line_naming_the_workflow(go_replayer: Path, tmp_path: Path) -> None:
    corpus_dir = tmp_path / "corpus"
    shutil.copytree(TEST_CORPUS, corpus_dir)
    corpus = Corpus.load(corpus_dir)
    [entry] = [e for e in corpus.entries if e.note.startswith("support-ended:")]
    path = corpus_dir / entry.file
    path.write_text(tamper_activity_type(path.read_text(), "chat_completion", "moderate_message"))

    done = replay_check(
        {"CODEC_KEYRING_FILE": str(TEST_KEYRING)},
        "--no-export",
        "--corpus",
        str(corpus_dir),
        "--go-replayer",
        str(go_replayer),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    failures = [line for line in done.stderr.splitlines() if line.startswith("replay-check: FAILED:")]
    assert len(failures) == 1, done.stderr
    assert f"SupportAgentWorkflow {entry.workflow_id}" in failures[0]
    assert f"{len(corpus.entries) - 1} of {len(corpus.entries)} histories replay" in done.stdout


def test_replay_check_without_a_key_ring_says_so(tmp_path: Path) -> None:
    done = replay_check({}, "--no-export", "--corpus", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("replay-check:") and "CODEC_KEYRING" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
