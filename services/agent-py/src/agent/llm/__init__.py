"""Model-provider adapter: every model call is an activity on the ``llm`` queue through the ``openai`` client."""
