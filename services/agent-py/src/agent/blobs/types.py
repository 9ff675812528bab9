"""The reference a workflow keeps instead of a large text (workflow-safe: no I/O imports)."""

from __future__ import annotations

from dataclasses import dataclass

PREVIEW_CHARS = 160


@dataclass(frozen=True)
class BlobRef:
    """Names stored bytes by a hash of them (keyed when blobs are sealed, see
    ``agent.blobs.store``), so equal content is stored once and a reference can never point at
    different bytes later. ``preview`` lets queries and the Web UI show what the
    blob is about without a trip to the store."""

    uri: str
    """``hmac-sha256:<key id>:<64 hex>`` (sealed stores) or ``sha256:<64 hex>`` (plain stores, and
    blobs written before names were keyed); the store maps it to a file or an object key."""
    size: int
    media_type: str = "text/plain; charset=utf-8"
    preview: str = ""

    @property
    def digest(self) -> str:
        """The hash part: 64 hex digits for a well-formed reference."""
        return self.uri.rpartition(":")[2]


def preview_of(text: str, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
