"""The crash drill's verdict on each model call, on hand-made ledgers (no stack needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drills.crash import classify

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def call(activity: str, attempt: int, answered_s: float, latency_ms: float = 1500) -> dict[str, object]:
    stamp = (T0 + timedelta(seconds=answered_s)).isoformat().replace("+00:00", "Z")
    return {"request_key": f"conv/{activity}/{attempt}", "timestamp": stamp, "latency_ms": latency_ms}


def kill(at_s: float) -> datetime:
    return T0 + timedelta(seconds=at_s)


@pytest.mark.parametrize(
    ("entries", "completed", "kills", "expected"),
    [
        pytest.param([call("1", 1, 2)], {"1": 1}, [], {"completed": 1}, id="one-call-recorded"),
        pytest.param(
            [call("1", 1, 2), call("1", 2, 9)], {"1": 2}, [kill(1.0)], {"in_flight": 1, "completed": 1},
            id="killed-while-the-model-answered",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 2, 9)], {"1": 2}, [kill(5.0)], {"in_flight": 1, "completed": 1},
            id="killed-after-the-answer-before-it-was-recorded",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 2, 9)], {"1": 2}, [], {"paid_twice": 1, "completed": 1},
            id="repeat-without-a-kill",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 2, 9)], {"1": 2}, [kill(10.0)], {"paid_twice": 1, "completed": 1},
            id="kill-only-after-the-repeat",
        ),
        pytest.param(
            [call("1", 1, 2), call("1", 1, 3)], {"1": 1}, [kill(2.5)], {"completed": 1, "paid_twice": 1},
            id="same-attempt-answered-twice",
        ),
        pytest.param([call("1", 2, 2)], {"1": 1}, [kill(1.0)], {"paid_twice": 1}, id="attempt-after-the-recorded-one"),
        pytest.param([call("9", 1, 2)], {"1": 1}, [kill(1.0)], {"paid_twice": 1}, id="activity-never-recorded"),
    ],
)
def test_classify(
    entries: list[dict[str, object]], completed: dict[str, int], kills: list[datetime], expected: dict[str, int]
) -> None:
    verdict = {name: len(keys) for name, keys in classify(entries, completed, kills).items() if keys}
    assert verdict == expected
