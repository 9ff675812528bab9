"""Embeddings for ingest and search: one provider interface, one activity on the ``embed`` queue.

- :mod:`agent.embeddings.types`: workflow-safe request/result types and names (import these
  from workflows; they pull in no I/O).
- :mod:`agent.embeddings.provider`: the :class:`EmbeddingProvider` protocol and its
  implementation over the OpenAI-compatible embeddings API (the ``openai`` client), so any
  hosted or self-hosted endpoint works; offline, the project's model server answers with the
  real all-MiniLM-L6-v2.
- :mod:`agent.embeddings.activities`: ``embed_texts``, which batches inputs, validates
  dimensions and heartbeats between batches.

This package imports nothing heavy on purpose; import the submodules you need.
"""
