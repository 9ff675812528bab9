"""The reference a workflow keeps instead of a large text (workflow-safe: no I/O imports)."""

from __future__ import annotations

from dataclasses import dataclass

PREVIEW_CHARS = 160


@dataclass(frozen=True)
class BlobRef:
    """Names stored bytes by their SHA-256, so equal content is stored once and a reference can
    never point at different bytes later. ``preview`` lets queries and the Web UI show what the
    blob is about without a trip to the store."""

    uri: str
    """``sha256:<64 hex digits>``; the store maps it to a file or an object key."""
    size: int
    media_type: str = "text/plain; charset=utf-8"
    preview: str = ""

    @property
    def digest(self) -> str:
        return self.uri.removeprefix("sha256:")


def preview_of(text: str, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
