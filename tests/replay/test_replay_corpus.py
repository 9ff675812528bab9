"""The replay gate on the recorded corpus: every history replays on the shipped code, each
patch stage replays the histories of the stage before, and an unpatched change is rejected.

The corpus (tests/replay/corpus, recorded by record.py) holds histories exactly as the server
stored them, encrypted under the TEST-ONLY key ring next to this file; the Replayer decrypts
them with the same data converter the workers use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from google.protobuf import json_format
from replay.stage_workflows import STAGE_WORKFLOWS, SupportAgentModeratedUnpatched
from temporalio.api.history.v1 import History

from agent.support.answer_screen import PATCH_ID, SHIPPED_STAGE, screen_answer
from agent.workflows.support_agent import SupportAgentWorkflow
from keyops.history import walk_payloads
from payload_codec import FileKeySource, KeyRing, is_encrypted, payload_key_id
from replaygate.corpus import Corpus, CorpusEntry
from replaygate.replay import python_workflows, replay_entry, replay_python

HERE = Path(__file__).resolve().parent
CORPUS = Corpus.load(HERE / "corpus")
TEST_KEY_ID = "TEST-ONLY.replay-corpus"


@pytest.fixture(scope="module")
def keyring() -> KeyRing:
    return FileKeySource(HERE / "test-keyring.json").load()


def scenario(name: str) -> list[CorpusEntry]:
    """The histories record.py recorded for one scenario (the manifest's notes start with it)."""
    found = [e for e in CORPUS.entries if e.note.startswith(f"{name}:")]
    assert found, f"the corpus has no {name} history; run tests/replay/record.py --only {name}"
    return found


def history_of(entry: CorpusEntry) -> History:
    return json_format.Parse(CORPUS.read(entry), History())


def patch_markers(entry: CorpusEntry) -> list[str]:
    markers = []
    for event in history_of(entry).events:
        details = event.marker_recorded_event_attributes.details
        if "patch-data" in details:
            markers.append(json.loads(details["patch-data"].payloads[0].data)["id"])
    return markers


def test_the_corpus_covers_every_workflow_type_and_is_stored_encrypted() -> None:
    types = {(e.namespace, e.workflow_type) for e in CORPUS.entries}
    assert {
        ("agents", "SupportAgentWorkflow"),
        ("agents", "SystemCheckWorkflow"),
        ("agents", "IngestWorkflow"),
        ("agents", "IngestDocumentWorkflow"),
        ("business", "RefundWorkflow"),
        ("retrieval", "IndexDocumentsWorkflow"),
    } <= types
    for name in ("support-waiting", "support-refund", "support-continued", "ingest", "stage-0", "stage-2"):
        scenario(name)
    # Stopped mid-flight: waiting for an approval, part-way through an ingestion.
    for name in ("support-waiting", "ingest-running"):
        last = history_of(scenario(name)[0]).events[-1]
        assert not last.HasField("workflow_execution_completed_event_attributes"), name
    for entry in CORPUS.entries:
        encrypted = 0
        for found in walk_payloads(history_of(entry)):
            if found.plain_by_design:
                continue
            assert is_encrypted(found.payload), f"{entry.file}: {found.path} is plain text"
            assert payload_key_id(found.payload) == TEST_KEY_ID, f"{entry.file}: {found.path}"
            encrypted += 1
        assert encrypted > 0, entry.file


@pytest.mark.parametrize("entry", [e for e in CORPUS.entries if e.namespace != "retrieval"], ids=lambda e: e.file)
async def test_every_python_history_replays_on_the_shipped_code(entry: CorpusEntry, keyring: KeyRing) -> None:
    outcome = await replay_entry(CORPUS, entry, python_workflows()[entry.namespace], keyring)
    assert outcome.ok, outcome.error


async def test_the_whole_corpus_replays_in_one_pass(keyring: KeyRing) -> None:
    outcomes = await replay_python(CORPUS, keyring)
    assert len(outcomes) == len([e for e in CORPUS.entries if e.namespace != "retrieval"])
    assert [o.error for o in outcomes if not o.ok] == []


def test_the_shipped_workflow_is_at_stage_1_and_the_stage_histories_show_it() -> None:
    assert SHIPPED_STAGE == 1 and STAGE_WORKFLOWS[1] is SupportAgentWorkflow
    assert (
        screen_answer("card 4111 1111 1111 1111, order 1234567890123")
        == "card [card number removed], order 1234567890123"
    )
    assert screen_answer("5500-0000-0000-0004 or 378282246310005.") == "[card number removed] or [card number removed]."
    assert screen_answer("ORD-1001, 12 EUR, tracking 4111111111111112") == "ORD-1001, 12 EUR, tracking 4111111111111112"
    # Stage 0 never asked; stage 1 (shipped) and stage 2 (deprecated) both leave the marker.
    assert PATCH_ID not in patch_markers(scenario("stage-0")[0])
    assert PATCH_ID in patch_markers(scenario("support-ended")[0])
    assert PATCH_ID in patch_markers(scenario("stage-2")[0])


@pytest.mark.parametrize(
    ("recorded_at", "replayed_on"),
    [
        ("stage-0", 1),  # conversations open at the deploy of stage 1
        ("support-ended", 2),  # stage-1 histories that took the patched branch, on stage 2
        ("support-refund", 2),
        ("stage-2", 3),  # stage-2 histories on the code without the patch call
        ("stage-2", 1),  # a rollback from stage 2 to stage 1 is safe too
    ],
)
async def test_each_patch_stage_replays_the_histories_of_the_stage_before(
    recorded_at: str, replayed_on: int, keyring: KeyRing
) -> None:
    workflows: Sequence[type] = [STAGE_WORKFLOWS[replayed_on]]
    for entry in scenario(recorded_at):
        outcome = await replay_entry(CORPUS, entry, workflows, keyring)
        assert outcome.ok, outcome.error


async def test_an_activity_added_without_a_patch_is_rejected_and_the_error_names_the_workflow(
    keyring: KeyRing,
) -> None:
    [entry] = scenario("support-ended")
    outcome = await replay_entry(CORPUS, entry, [SupportAgentModeratedUnpatched], keyring)
    assert not outcome.ok
    assert outcome.nondeterministic, outcome.error
    assert outcome.error is not None
    assert "SupportAgentWorkflow" in outcome.error and entry.workflow_id in outcome.error


async def test_without_the_right_key_nothing_replays() -> None:
    other = KeyRing({"someone-else": b"k" * 32}, {"*": "someone-else"})
    [entry] = scenario("system-check")
    outcome = await replay_entry(CORPUS, entry, python_workflows()["agents"], other)
    assert not outcome.ok
    assert "SystemCheckWorkflow" in (outcome.error or "")


@pytest.mark.parametrize("replayed_on", [3, 0])
async def test_skipping_stage_2_or_rolling_back_to_stage_0_breaks_stage_1_histories(
    replayed_on: int, keyring: KeyRing
) -> None:
    """Why the stages wait: a run that recorded the stage 1 marker fails on code without the
    patch call, so stage 3 waits until such runs are gone, and stage 1 never rolls back to 0."""
    [entry] = scenario("support-ended")
    outcome = await replay_entry(CORPUS, entry, [STAGE_WORKFLOWS[replayed_on]], keyring)
    assert outcome.nondeterministic and PATCH_ID in (outcome.error or ""), outcome.error
