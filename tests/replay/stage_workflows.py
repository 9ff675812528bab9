"""Test-only variants of SupportAgentWorkflow, registered under its real name.

One per stage of the answer-screen patch lifecycle (agent.support.answer_screen) that is not the
shipped one, and one with an incompatible change: an activity added without a patch. The
recording script runs the stage variants to record their histories; the replay suite replays
histories of one stage on the code of the next, and the incompatible one must be rejected.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agent.queues import LLM_TASK_QUEUE
    from agent.support.answer_screen import STAGES
    from agent.support.types import AgentReply, ConversationStart, ConversationSummary

# Imported in the sandbox, not passed through: the workflow module's own imports are what put
# its types in the sandbox's modules, where the data converter resolves annotations.
from agent.workflows.support_agent import SupportAgentWorkflow

NAME = "SupportAgentWorkflow"


# The SDK wants @workflow.init and @workflow.run on each decorated class itself (not a local
# or inherited one), hence the two one-line overrides per variant.


@workflow.defn(name=NAME)
class SupportAgentStage0(SupportAgentWorkflow):
    screen_answer = staticmethod(STAGES[0])

    @workflow.init
    def __init__(self, start: ConversationStart) -> None:
        super().__init__(start)

    @workflow.run
    async def run(self, start: ConversationStart) -> ConversationSummary:
        return await super().run(start)


@workflow.defn(name=NAME)
class SupportAgentStage2(SupportAgentWorkflow):
    screen_answer = staticmethod(STAGES[2])

    @workflow.init
    def __init__(self, start: ConversationStart) -> None:
        super().__init__(start)

    @workflow.run
    async def run(self, start: ConversationStart) -> ConversationSummary:
        return await super().run(start)


@workflow.defn(name=NAME)
class SupportAgentStage3(SupportAgentWorkflow):
    screen_answer = staticmethod(STAGES[3])

    @workflow.init
    def __init__(self, start: ConversationStart) -> None:
        super().__init__(start)

    @workflow.run
    async def run(self, start: ConversationStart) -> ConversationSummary:
        return await super().run(start)


STAGE_WORKFLOWS: dict[int, type[SupportAgentWorkflow]] = {
    0: SupportAgentStage0,
    1: SupportAgentWorkflow,  # the shipped stage (SHIPPED_STAGE) is the real class
    2: SupportAgentStage2,
    3: SupportAgentStage3,
}


@workflow.defn(name=NAME)
class SupportAgentModeratedUnpatched(SupportAgentWorkflow):
    """The mistake the gate exists for: a moderation activity before every answer, no patch.

    Any history with a customer message has other commands where this one schedules the
    activity, so replaying it must fail with a non-determinism error.
    """

    @workflow.init
    def __init__(self, start: ConversationStart) -> None:
        super().__init__(start)

    @workflow.run
    async def run(self, start: ConversationStart) -> ConversationSummary:
        return await super().run(start)

    async def _answer(self, text: str) -> AgentReply:
        await workflow.execute_activity(
            "moderate_message", text, task_queue=LLM_TASK_QUEUE, start_to_close_timeout=timedelta(seconds=10)
        )
        return await super()._answer(text)
