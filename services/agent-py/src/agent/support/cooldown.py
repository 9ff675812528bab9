"""The pause before a conversation's next model call, after failures (workflow code).

A run of tool failures or a model call that failed through all its retries starts a cool-down
on a durable timer, so a crash-looping provider or a confused model is not hammered. When the
provider itself may be down, the pause ends as soon as it answers its (unpaid) health probe; when
it asked for a delay (Retry-After), that delay is the pause.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from agent.llm.types import MODEL_HEALTH_ACTIVITY, ModelErrorType
from agent.queues import LLM_TASK_QUEUE

# Patch: cool-downs follow the provider's recovery (its health, its Retry-After) instead of a
# fixed pause, and a call that succeeded after retries no longer pauses the next one.
COOLDOWN_FOLLOWS_PROVIDER = "cooldown-follows-provider"
PROVIDER_DOWN = (ModelErrorType.CONNECTION, ModelErrorType.TIMEOUT, ModelErrorType.SERVER_ERROR)
"""Failures after which the provider itself may be down: the cool-down ends when it answers again."""
HEALTH_PROBE_TIMEOUT = timedelta(seconds=10)


class CoolDown:
    def __init__(self, default_s: float) -> None:
        self._default = timedelta(seconds=default_s)
        self.until: datetime | None = None
        self._probe = False

    def start(self, why: str, *, probe: bool = False, delay: timedelta | None = None) -> None:
        """Pause the next model call: ``delay`` when the provider asked for one, else the default.
        With ``probe`` the pause ends as soon as the provider answers again."""
        until = workflow.now() + (delay or self._default)
        if self.until is None or until > self.until:
            self.until = until
        self._probe = probe
        workflow.logger.info("cooling down until %s: %s", until.isoformat(), why)

    def remaining(self) -> timedelta:
        return self.until - workflow.now() if self.until is not None else timedelta(0)

    async def sit_out(self) -> None:
        """Wait for the rest of the cool-down (if any), then clear it."""
        remaining = self.remaining()
        if remaining > timedelta(0):
            if self._probe and workflow.patched(COOLDOWN_FOLLOWS_PROVIDER):
                await _until_provider_answers(remaining)
            else:
                await workflow.sleep(remaining, summary="cool-down before the next model call")
        self.until, self._probe = None, False


async def _until_provider_answers(at_most: timedelta) -> None:
    """Probe the provider (its model list: nothing paid) until it answers, for at most ``at_most``."""
    try:
        await workflow.execute_activity(
            MODEL_HEALTH_ACTIVITY,
            task_queue=LLM_TASK_QUEUE,
            start_to_close_timeout=HEALTH_PROBE_TIMEOUT,
            schedule_to_close_timeout=at_most,
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5)),
            result_type=str,
            summary="cool-down: until the model provider answers",
        )
    except ActivityError:
        pass  # still down at the end of the cool-down: the next round finds out
