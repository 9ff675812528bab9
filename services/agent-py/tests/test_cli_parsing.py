"""The CLI's argument types and usage errors (no server needed)."""

from __future__ import annotations

import argparse

import pytest

from agent.cli import build_parser, duration, money_cents


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
