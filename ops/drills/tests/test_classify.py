"""The drills' verdicts on each paid call, on hand-made ledgers (no stack needed): the crash
drill's against its kills, the cluster drill's against when history recorded each call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drills.cluster import _History, _next_task_after, judge_calls
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


def history(**completed_s: float) -> _History:
    """Activity id (``a<N>``) -> when history recorded its completion, in seconds after T0."""
    return _History({k.removeprefix("a"): T0 + timedelta(seconds=s) for k, s in completed_s.items()}, [])


@pytest.mark.parametrize(
    ("entries", "recorded", "expected"),
    [
        pytest.param([call("1", 1, 2)], history(a1=2.1), {"recorded": 1}, id="paid-once-recorded"),
        pytest.param(
            # Attempt 1's answer never reached history (a node died with the completion on its
            # way); attempt 2 paid again before anything was recorded: not the cost we forbid.
            [call("1", 1, 2), call("1", 2, 9)],
            history(a1=9.1),
            {"recorded": 1, "unrecorded_repeats": 1},
            id="answer-lost-before-history",
        ),
        pytest.param(
            # History had the answer at 2.1 s; a call for the same activity began at 8.5 s.
            [call("1", 1, 2), call("1", 1, 10)],
            history(a1=2.1),
            {"recorded": 1, "repeated_recorded": 1},
            id="recorded-answer-paid-again",
        ),
        pytest.param(
            [call("1", 1, 2, batch=0), call("1", 1, 2, batch=1), call("2", 1, 4)],
            history(a1=2.5, a2=4.1),
            {"recorded": 3},
            id="embedding-batches-are-calls-of-their-own",
        ),
        pytest.param(
            [call("1", 1, 2, outcome="error"), call("1", 2, 4)],
            history(a1=4.1),
            {"recorded": 1},
            id="failed-calls-are-not-paid",
        ),
    ],
)
def test_paid_calls_are_judged_against_when_history_recorded_them(
    entries: list[dict[str, object]], recorded: _History, expected: dict[str, int]
) -> None:
    verdict = judge_calls(entries, recorded)
    assert {name: len(keys) for name, keys in verdict.items() if keys} == expected


def test_resume_is_the_next_workflow_task_after_the_moment() -> None:
    tasks = _History({}, [T0 + timedelta(seconds=s) for s in (1.0, 7.5, 12.0)])
    other = _History({}, [T0 + timedelta(seconds=6.2)])
    assert _next_task_after([tasks, other], T0 + timedelta(seconds=5)) == 1.2
    assert _next_task_after([tasks], T0 + timedelta(seconds=13)) is None
