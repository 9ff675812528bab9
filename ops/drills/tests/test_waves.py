"""The drill's conversations outlast its kill plan (drills.crash._talk_while_killing).

A CI machine fast enough to finish every conversation before the last kill once made the cluster
drill skip PostgreSQL's kill; the drill now starts another wave while kills remain.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from drills import crash
from drills.crash import Customer, Kill, _talk_while_killing


async def _fake_conversation(_client: Customer, _cid: str) -> None:
    await asyncio.sleep(0.01)


def _killer_taking(seconds: float, kills: int) -> Any:
    async def killer() -> list[tuple[Kill, float]]:
        done = []
        for n in range(kills):
            await asyncio.sleep(seconds / kills)
            done.append((Kill([f"p{n}"], "2026-01-01T00:00:00+00:00", 0.0), 0.0))
        return done

    return killer()


@pytest.mark.parametrize(
    ("kill_plan_s", "more_waves"),
    [(0.0, False), (0.3, True)],
    ids=["plan-done-first", "conversations-done-first"],
)
async def test_waves_continue_until_every_kill_is_done(
    monkeypatch: pytest.MonkeyPatch, kill_plan_s: float, more_waves: bool
) -> None:
    monkeypatch.setattr(crash, "_conversation", _fake_conversation)
    cids: list[str] = []

    def new_cid() -> str:
        cids.append(f"c{len(cids)}")
        return cids[-1]

    first = [new_cid() for _ in range(3)]
    results, kills = await _talk_while_killing(
        Customer(chat=None),  # type: ignore[arg-type]
        first,
        new_cid,
        _killer_taking(kill_plan_s, 3),
        asyncio.Event(),
        concurrency=2,
        timeout_s=10,
    )
    assert [k.targets for k, _ in kills] == [["p0"], ["p1"], ["p2"]]
    assert len(results) == len(cids), "every conversation started has its outcome"
    assert (len(cids) > 3) is more_waves
    assert len(cids) % 2 == 1, "each later wave is `concurrency` conversations"


async def test_a_process_that_does_not_come_back_ends_the_drill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crash, "_conversation", _fake_conversation)

    async def failing_killer() -> list[tuple[Kill, float]]:
        await asyncio.sleep(0.05)
        raise OSError("temporal-1 never became ready")

    with pytest.raises(RuntimeError, match="did not come back: temporal-1 never became ready"):
        await _talk_while_killing(
            Customer(chat=None),  # type: ignore[arg-type]
            ["c0"],
            lambda: "c-next",
            failing_killer(),
            asyncio.Event(),
            concurrency=1,
            timeout_s=10,
        )
