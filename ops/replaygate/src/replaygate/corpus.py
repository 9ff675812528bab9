"""A replay corpus: workflow histories exactly as the server stores them, plus a manifest.

Histories are kept encrypted (payloads ``binary/encrypted``), so a corpus copied from a
production cluster holds no plain text and needs the key ring only at replay time. Each one is
protobuf JSON, the format ``temporal workflow show --output json`` writes and both SDKs'
replayers read; the manifest ``corpus.json`` names the workflow behind each file, which a
history itself does not record (the workflow id is not in its events).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from google.protobuf import json_format
from temporalio.api.history.v1 import History

from keyops.history import walk_payloads
from payload_codec import is_encrypted
from replaygate.errors import ReplayGateError

MANIFEST = "corpus.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CorpusEntry:
    namespace: str
    workflow_type: str
    workflow_id: str
    run_id: str
    file: str
    """Relative to the corpus directory."""
    note: str = ""
    """Why the history is in the corpus (what it covers), for people reading the manifest."""

    @property
    def label(self) -> str:
        return f"{self.workflow_type} {self.workflow_id} (run {self.run_id}, namespace {self.namespace})"


@dataclass
class Corpus:
    root: Path
    entries: list[CorpusEntry] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> Corpus:
        path = root / MANIFEST
        if not path.exists():
            return cls(root)
        try:
            document = json.loads(path.read_text())
            entries = [CorpusEntry(**item) for item in document["histories"]]
        except (ValueError, KeyError, TypeError) as err:
            raise ReplayGateError(f"{path} is not a corpus manifest ({err})") from None
        return cls(root, entries)

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        document = {"histories": [asdict(e) for e in sorted(self.entries, key=lambda e: e.file)]}
        (self.root / MANIFEST).write_text(json.dumps(document, indent=2) + "\n")

    def add(self, namespace: str, workflow_id: str, run_id: str, history: History, note: str = "") -> CorpusEntry:
        """Store ``history`` (refused if any payload is plain) and list it; replaces the same run."""
        plain = [f.path for f in walk_payloads(history) if not is_encrypted(f.payload) and not f.plain_by_design]
        if plain:
            raise ReplayGateError(
                f"workflow {workflow_id} in {namespace} has {len(plain)} unencrypted payload(s) (first: {plain[0]}); "
                "the corpus keeps histories only as encrypted as the server should hold them"
            )
        workflow_type = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        file = f"{namespace}/{_UNSAFE.sub('_', workflow_id)}.{run_id[:8]}.json"
        entry = CorpusEntry(namespace, workflow_type, workflow_id, run_id, file, note)
        path = self.root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json_format.MessageToJson(history, indent=2) + "\n")
        self.entries = [e for e in self.entries if (e.namespace, e.run_id) != (namespace, run_id)] + [entry]
        return entry

    def remove(self, entry: CorpusEntry) -> None:
        (self.root / entry.file).unlink(missing_ok=True)
        self.entries = [e for e in self.entries if e != entry]

    def read(self, entry: CorpusEntry) -> str:
        return (self.root / entry.file).read_text()
