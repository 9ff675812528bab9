"""The platform as MCP tools."""
