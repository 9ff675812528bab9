"""Splitting extracted text into chunks for embedding and search.

Chunks follow the text's own boundaries: sentences are packed together up to ``chunk_chars``,
and a chunk that is at least half full ends before a paragraph that would not fit whole; only
a sentence longer than a whole chunk is cut, between words. Each chunk after the first starts
with the last sentences of the previous one, up to ``overlap_chars``, so a passage that
straddles a boundary is still whole in one of the two chunks.
"""

from __future__ import annotations

import re

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, each with its inner whitespace collapsed to single spaces."""
    return [" ".join(block.split()) for block in _PARAGRAPH_BREAK.split(text) if block.strip()]


def _sentences(paragraph: str, limit: int) -> list[str]:
    """The paragraph's sentences, a sentence longer than ``limit`` cut into word runs."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


def chunk_text(text: str, chunk_chars: int, overlap_chars: int) -> list[str]:
    if chunk_chars < 100:
        raise ValueError(f"chunk_chars must be at least 100, got {chunk_chars}")
    if not 0 <= overlap_chars < chunk_chars // 2:
        raise ValueError(
            f"overlap_chars must be between 0 and half of chunk_chars ({chunk_chars // 2}), got {overlap_chars}"
        )
    units: list[tuple[str, int]] = []  # (sentence, length of its paragraph if it starts one, else 0)
    for paragraph in paragraphs(text):
        for number, piece in enumerate(_sentences(paragraph, chunk_chars)):
            units.append((piece, len(paragraph) if number == 0 else 0))

    def size(parts: list[tuple[str, int]]) -> int:
        return sum(len(p) + 2 for p, _ in parts)

    def render(parts: list[tuple[str, int]]) -> str:
        out = ""
        for number, (piece, paragraph) in enumerate(parts):
            if number:
                out += "\n\n" if paragraph else " "
            out += piece
        return out

    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    fresh = 0  # units in ``current`` that no earlier chunk holds
    for unit in units:
        piece, paragraph_chars = unit
        full = current and size(current) + len(piece) > chunk_chars
        # Better a shorter chunk than a paragraph torn in two, as long as the chunk is worth it.
        ends_early = (
            current
            and paragraph_chars
            and size(current) + paragraph_chars > chunk_chars
            and 2 * size(current) >= chunk_chars
        )
        if fresh and (full or ends_early):
            chunks.append(render(current))
            carried: list[tuple[str, int]] = []
            for previous in reversed(current):
                if size(carried) + len(previous[0]) > min(overlap_chars, chunk_chars - len(piece) - 2):
                    break
                carried.insert(0, previous)
            current, fresh = carried, 0
        current.append(unit)
        fresh += 1
    if fresh:
        chunks.append(render(current))
    return chunks
