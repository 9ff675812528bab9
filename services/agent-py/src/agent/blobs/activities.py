"""Writing texts to the blob store from workflows.

Run as a *local* activity: a local activity's input is not recorded in history (only its
result, the small reference), so the text crosses into the store without being copied into
the history a second time.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from agent.blobs.store import BlobStore
from agent.blobs.types import BlobRef

STORE_TEXT_ACTIVITY = "store_text"


@dataclass
class StoreText:
    text: str
    media_type: str = "text/plain; charset=utf-8"


class BlobActivities:
    def __init__(self, store: BlobStore) -> None:
        self._store = store

    @activity.defn(name=STORE_TEXT_ACTIVITY)
    async def store_text(self, request: StoreText) -> BlobRef:
        # Content-addressed, so a retry (or a replay that re-runs it) writes the same name.
        return await self._store.put(request.text.encode(), request.media_type)
