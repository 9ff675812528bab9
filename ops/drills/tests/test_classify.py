"""The crash drill's verdict on each paid call, on hand-made ledgers (no stack needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drills.crash import classify

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def call(
    activity: str,
    attempt: int,
    answered_s: float,
    latency_ms: float = 1500,
    outcome: str = "ok",
    batch: int | None = None,
) -> dict[str, object]:
    stamp = (T0 + timedelta(seconds=answered_s)).isoformat().replace("+00:00", "Z")
    key = f"conv/{activity}/{attempt}" + (f"/{batch}" if batch is not None else "")
    return {"request_key": key, "timestamp": stamp, "latency_ms": latency_ms, "outcome": outcome}


def kill(at_s: float) -> datetime:
    return T0 + timedelta(seconds=at_s)


@pytest.mark.parametrize(
    ("entries", "kills", "expected"),
    [
        pytest.param([call("1", 1, 2)], [], {"paid_once": 1}, id="one-call"),
        pytest.param(
            [call("1", 1, 2)],
            [kill(5.0)],
            {"paid_once": 1},
            id="answer-kept-a-later-attempt-returned-it",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 2, 9)],
            [kill(1.0)],
            {"in_flight": 1, "paid_once": 1},
            id="killed-while-the-model-answered",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 2, 9)],
            [kill(5.0)],
            {"in_flight": 1, "paid_once": 1},
            id="killed-after-the-answer-before-it-was-kept",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 2, 9)],
            [],
            {"paid_twice": 1, "paid_once": 1},
            id="repeat-without-a-kill",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 2, 9)],
            [kill(10.0)],
            {"paid_twice": 1, "paid_once": 1},
            id="kill-only-after-the-repeat",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 1, 3)],
            [],
            {"paid_once": 1, "paid_twice": 1},
            id="same-attempt-answered-twice",
        ),
        pytest.param(
            [call("1", 1, 2, outcome="server_error"), call("1", 2, 4)],
            [],
            {"paid_once": 1},
            id="a-refused-attempt-is-not-paid",
        ),
        pytest.param(
            [call("e", 1, 2, batch=0), call("e", 1, 3, batch=1), call("e", 2, 5, batch=1)],
            [],
            {"paid_once": 2, "paid_twice": 1},
            id="embedding-batches-are-separate-calls",
        ),
    ],
)
def test_classify(entries: list[dict[str, object]], kills: list[datetime], expected: dict[str, int]) -> None:
    verdict = {name: len(keys) for name, keys in classify(entries, kills).items() if keys}
    assert verdict == expected
