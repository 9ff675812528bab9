"""Tools from external MCP servers, offered to the support agent beside its own."""
