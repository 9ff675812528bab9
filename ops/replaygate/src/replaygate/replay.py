"""Replay a corpus's Python histories with the SDK's Replayer, decrypting with a key ring.

The Replayer runs the same workflow classes the workers register, through the same encryption
data converter, so a history replays exactly as a restarted worker would rebuild it: a
non-determinism error here is the error a deployed worker would hit on that workflow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import _Definition  # the SDK's own reading of @workflow.defn (type names)

from payload_codec import KeyRing, data_converter
from replaygate.corpus import Corpus, CorpusEntry

GO_NAMESPACES = frozenset({"retrieval"})
"""Namespaces whose workflows run on the Go worker; the Go replayer takes those."""


def python_workflows() -> dict[str, Sequence[type]]:
    """The workflow classes each Python namespace's workers register, from the workers themselves."""
    from agent.worker import WORKFLOWS as AGENT_WORKFLOWS
    from business.workflows import RefundWorkflow

    return {"agents": AGENT_WORKFLOWS, "business": [RefundWorkflow]}


def registered_types(namespace: str) -> set[str] | None:
    """The workflow type names this build's Python workers register in ``namespace``; None for a
    namespace the Python side does not serve (Go's, or an unknown one)."""
    classes = python_workflows().get(namespace)
    return None if classes is None else _type_names(classes)


def _type_names(classes: Sequence[type]) -> set[str]:
    # A dynamic workflow (name None) answers to any type, so it names none of its own.
    definitions = (_Definition.must_from_class(c) for c in classes)
    return {d.name for d in definitions if d.name is not None}


@dataclass(frozen=True)
class ReplayOutcome:
    entry: CorpusEntry
    error: str | None
    """None when the history replayed; else the failure's first line, naming the workflow."""
    nondeterministic: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


async def replay_entry(
    corpus: Corpus, entry: CorpusEntry, workflows: Sequence[type], keyring: KeyRing
) -> ReplayOutcome:
    replayer = Replayer(
        workflows=workflows, namespace=entry.namespace, data_converter=data_converter(keyring, entry.namespace)
    )
    history = WorkflowHistory.from_json(entry.workflow_id, corpus.read(entry))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    failure = result.replay_failure
    if failure is None:
        return ReplayOutcome(entry, None)
    # The SDK wraps core's reason in a dump of the failure it reported; the reason is enough.
    text = str(failure)
    found = re.search(r'message: "((?:[^"\\]|\\.)+)"', text)
    reason = found.group(1) if found else (text.strip().splitlines() or [type(failure).__name__])[0]
    return ReplayOutcome(
        entry,
        f"{entry.label} does not replay: {type(failure).__name__}: {reason}",
        nondeterministic="nondetermin" in f"{type(failure).__name__} {failure}".lower(),
    )


async def replay_python(
    corpus: Corpus, keyring: KeyRing, workflows: Mapping[str, Sequence[type]] | None = None
) -> list[ReplayOutcome]:
    """Every Python history of ``corpus``, in manifest order."""
    workflows = python_workflows() if workflows is None else workflows
    outcomes = []
    for entry in corpus.entries:
        if entry.namespace in GO_NAMESPACES:
            continue
        registered = workflows.get(entry.namespace)
        if registered is None:
            outcomes.append(
                ReplayOutcome(entry, f"{entry.label}: no Python worker serves namespace {entry.namespace!r}")
            )
            continue
        if entry.workflow_type not in _type_names(registered):
            outcomes.append(
                ReplayOutcome(entry, f"{entry.label}: this build registers no workflow type {entry.workflow_type!r}")
            )
            continue
        outcomes.append(await replay_entry(corpus, entry, registered, keyring))
    return outcomes
