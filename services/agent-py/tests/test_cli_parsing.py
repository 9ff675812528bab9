"""The CLI's argument types and usage errors (no server needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from rich.console import Console

from agent.chat.client import ChatError
from agent.cli import build_parser, duration, money_cents
from agent.ingest.command import ingest
from agent.ingest.types import CHUNK_CHARS, CHUNK_OVERLAP_CHARS


@pytest.mark.parametrize(
    ("raw", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("24h", 86400), ("1.5h", 5400), ("7d", 604800)]
)
def test_durations(raw: str, seconds: float) -> None:
    assert duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "0", "-5m", "soon", "5 weeks"])
def test_bad_durations(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration"):
        duration(raw)


def test_amounts() -> None:
    assert money_cents("100") == 10_000
    assert money_cents("100.5") == 10_050
    assert money_cents("0.01") == 1
    with pytest.raises(argparse.ArgumentTypeError, match="is not an amount"):
        money_cents("1,000")


def test_chat_commands_parse() -> None:
    parser = build_parser()
    args = parser.parse_args(["chat", "approve", "support-1", "APR-1", "--note", "ok", "--approver", "ana"])
    parsed = (args.id, args.approval_id, args.approve, args.note, args.approver)
    assert parsed == ("support-1", "APR-1", True, "ok", "ana")
    args = parser.parse_args(["chat", "start", "--approval-threshold", "50", "--approval-timeout", "10m"])
    assert (args.approval_threshold, args.approval_timeout) == (5000, 600)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["chat", "send", "only-an-id"])
    assert info.value.code == 2
    assert "the following arguments are required: message" in capsys.readouterr().err


def test_ingest_chunk_size_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["ingest", "docs"])
    assert (args.chunk_chars, args.overlap_chars) == (CHUNK_CHARS, CHUNK_OVERLAP_CHARS)
    args = parser.parse_args(["ingest", "docs", "--chunk-chars", "300", "--overlap-chars", "0"])
    assert (args.chunk_chars, args.overlap_chars) == (300, 0)


@pytest.mark.parametrize(
    ("chunk_chars", "overlap_chars"), [(99, 0), (300, 150), (300, -1)], ids=["too-small", "overlap-half", "negative"]
)
async def test_ingest_refuses_bad_chunk_sizes_before_asking_the_server(
    tmp_path: Path, chunk_chars: int, overlap_chars: int
) -> None:
    (tmp_path / "a.txt").write_text("text")
    # No client: the request is checked before the first call to the server.
    with pytest.raises(ChatError, match="chunk_chars must be at least 100 and overlap_chars under half of it"):
        await ingest(
            None,  # type: ignore[arg-type]
            Console(),
            [str(tmp_path)],
            collection="kb",
            workflow_id=None,
            retrieval_endpoint="retrieval",
            chunk_chars=chunk_chars,
            overlap_chars=overlap_chars,
        )
