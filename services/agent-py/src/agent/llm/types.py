"""Workflow-safe data types of a model call (no I/O imports, usable inside the sandbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChatMessage:
    role: str
    content: str | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


@dataclass
class ChatRequest:
    messages: list[ChatMessage]
    tools: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    """None: the worker's configured model (``AGENT_MODEL``), so prompts can move without versioning."""
    max_tokens: int | None = None


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass
class ChatResult:
    model: str
    content: str | None
    tool_calls: list[ToolCall]
    finish_reason: str
    usage: Usage
