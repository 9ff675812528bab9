"""Text and title of a document's bytes: plain text, Markdown, HTML or PDF.

Everything raises :class:`DocumentProblem` with one sentence a person can act on; the activity
turns it into a non-retryable error, since reading the same bytes again gives the same answer.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import PurePath

from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from agent.ingest.types import IngestErrorType

# Elements whose content a reader never sees as text.
_INVISIBLE = ("script", "style", "noscript", "template", "svg", "iframe", "object", "head")
# Elements that end a paragraph; inline ones (a, em, span, ...) stay inside their sentence.
_BLOCKS = (
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "nav",
    "aside",
    "blockquote",
    "pre",
    "li",
    "dt",
    "dd",
    "tr",
    "table",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "figcaption",
)
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


class DocumentProblem(Exception):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


@dataclass
class Extracted:
    title: str
    text: str


def title_from_name(source: str) -> str:
    stem = PurePath(source).stem
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or source


def _utf8(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DocumentProblem(
            f"{source} is not UTF-8 text (invalid byte at offset {err.start}); convert it to UTF-8 and ingest it again",
            IngestErrorType.MALFORMED,
        ) from None


def extract_text(data: bytes, source: str) -> Extracted:
    return Extracted(title=title_from_name(source), text=_utf8(data, source))


def extract_markdown(data: bytes, source: str) -> Extracted:
    """Headings stay in the text (without their ``#`` marks) as paragraphs of their own: they
    are what a chunk is about. The first heading is the title."""
    title = ""
    lines = []
    for line in _utf8(data, source).splitlines():
        heading = _MARKDOWN_HEADING.match(line)
        if heading:
            title = title or heading.group(2)
            lines.extend(["", heading.group(2), ""])
        else:
            lines.append(line)
    return Extracted(title=title or title_from_name(source), text="\n".join(lines))


def extract_html(data: bytes, source: str) -> Extracted:
    soup = BeautifulSoup(data, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup.find_all(_INVISIBLE):
        tag.decompose()
    if not title and (heading := soup.find(["h1", "h2"])):
        title = heading.get_text(" ", strip=True)
    for tag in soup.find_all(_BLOCKS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    return Extracted(title=title or title_from_name(source), text=soup.get_text())


def extract_pdf(data: bytes, source: str) -> Extracted:
    # pypdf logs recoverable damage as warnings; the result (text or a problem) says enough.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentProblem(
                f"{source} is a password-protected PDF; remove the password", IngestErrorType.MALFORMED
            )
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except DocumentProblem:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as err:
        raise DocumentProblem(
            f"{source} is not a readable PDF ({type(err).__name__}: {err})", IngestErrorType.MALFORMED
        ) from None
    # pypdf ends lines inside a paragraph with "\n"; pages are paragraphs of their own at least.
    return Extracted(title=str(meta_title).strip() or title_from_name(source), text="\n\n".join(pages))


EXTRACTORS = {"text": extract_text, "markdown": extract_markdown, "html": extract_html, "pdf": extract_pdf}


def extract(data: bytes, kind: str, source: str) -> Extracted:
    extractor = EXTRACTORS.get(kind)
    if extractor is None:
        raise DocumentProblem(f"{source}: no extractor for documents of kind {kind!r}", IngestErrorType.UNSUPPORTED)
    extracted = extractor(data, source)
    if not extracted.text.strip():
        hint = " (a scanned PDF needs OCR first)" if kind == "pdf" else ""
        raise DocumentProblem(f"{source} contains no text{hint}", IngestErrorType.EMPTY)
    return extracted
