"""Task queues of the ``agents`` namespace (see DESIGN.md: one pool per kind of work)."""

AGENT_TASK_QUEUE = "agent"
"""Workflows: cheap, deterministic orchestration."""

LLM_TASK_QUEUE = "llm"
"""Model calls: a separately sized (rate-limited) pool, so a provider slowdown never starves workflows."""

EMBED_TASK_QUEUE = "embed"
"""Embeddings: its own pool (a GPU pool in production), sized to what the provider can take."""

MCP_TASK_QUEUE = "mcp"
"""Calls to external MCP servers: their own pool, so a slow external server holds no workflow slot."""
