"""The answer screen: what the model says is checked before the customer sees it.

The model sees order data and tool results, and a confused or manipulated model can repeat a
payment card number into its answer. The screen replaces every Luhn-valid 13–19 digit number
with a notice, deterministically (no I/O), so it runs inside the workflow.

It was added to a workflow that already had conversations running, so it ships through the
patch lifecycle of docs/versioning.md. Each stage is a function with the same signature; the
workflow uses :data:`SHIPPED_STAGE` and the replay suite (tests/replay) registers the others
under the same workflow name to prove each stage replays the histories of the one before.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from temporalio import workflow

PATCH_ID = "answer-screen"
CARD_NOTICE = "[card number removed]"
# Digits with optional single spaces or dashes between them, as people and models write cards.
_CARD_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def screen_answer(text: str) -> str:
    """``text`` with every payment card number replaced by :data:`CARD_NOTICE`."""

    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group())
        return CARD_NOTICE if _luhn_valid(digits) else match.group()

    return _CARD_CANDIDATE.sub(replace, text)


def stage0_unscreened(text: str) -> str:
    """Before the change: answers go out as the model wrote them."""
    return text


def stage1_patched(text: str) -> str:
    """New runs screen; runs that answered before the deploy replay without the screen."""
    return screen_answer(text) if workflow.patched(PATCH_ID) else text


def stage2_deprecated(text: str) -> str:
    """Every run still open took the patched branch: always screen, still mark the history."""
    workflow.deprecate_patch(PATCH_ID)
    return screen_answer(text)


def stage3_removed(text: str) -> str:
    """Every marked run has closed and aged out of retention: the patch call is gone."""
    return screen_answer(text)


Stage = Callable[[str], str]
STAGES: dict[int, Stage] = {0: stage0_unscreened, 1: stage1_patched, 2: stage2_deprecated, 3: stage3_removed}
SHIPPED_STAGE = 1
