"""Activities of the support conversation that touch the blob store."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from temporalio import activity
from temporalio.converter import AdvancedJSONEncoder

from agent.blobs.store import BlobStore
from agent.blobs.types import BlobRef
from agent.support.types import TranscriptEntry

TRANSCRIPT_MEDIA_TYPE = "application/vnd.durable-agent.transcript+json"


ARCHIVE_TRANSCRIPT_ACTIVITY = "archive_transcript"


@dataclass
class ArchiveRequest:
    conversation_id: str
    run_index: int
    summary: str
    entries: list[TranscriptEntry]
    previous: BlobRef | None = None
    """The archive of the runs before, so one reference reaches the whole transcript."""


class SupportActivities:
    def __init__(self, store: BlobStore) -> None:
        self._store = store

    @activity.defn(name=ARCHIVE_TRANSCRIPT_ACTIVITY)
    async def archive_transcript(self, request: ArchiveRequest) -> BlobRef:
        # Run as a local activity: the transcript (its input) stays out of history; only the
        # reference comes back. Content-addressed, so a re-run writes the same blob.
        document = {
            "conversation_id": request.conversation_id,
            "run_index": request.run_index,
            "previous": request.previous.uri if request.previous else None,
            "summary": request.summary,
            "entries": [dataclasses.asdict(e) for e in request.entries],
        }
        data = json.dumps(document, cls=AdvancedJSONEncoder, ensure_ascii=False, indent=1).encode()
        return await self._store.put(data, TRANSCRIPT_MEDIA_TYPE)
