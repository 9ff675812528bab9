"""The support agent: SupportAgentWorkflow's types, policies, tools and prompts.

Everything here except ``activities`` is workflow code or plain data: deterministic, no I/O.
"""
