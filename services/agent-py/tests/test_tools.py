"""The tool registry: each tool's name is spelled once (agent.tools) and has one handler."""

from __future__ import annotations

from agent.support.toolbox import Toolbox
from agent.tools import SUPPORT, SUPPORT_TOOLS


def test_every_tool_offered_to_the_model_has_one_handler_by_its_name() -> None:
    handlers = Toolbox._handlers(object.__new__(Toolbox))
    assert list(handlers) == [t.name for t in SUPPORT]
    assert [d["function"]["name"] for d in SUPPORT_TOOLS] == [t.name for t in SUPPORT]
