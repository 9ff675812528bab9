"""The durable support agent: workflows (namespace ``agents``), model-call activities, worker and CLI."""
