"""Document ingestion: extraction, chunking and the activities of IngestWorkflow.

``types`` is workflow-safe; ``extract``, ``chunking`` and ``activities`` do the I/O and are
imported by the worker (and by tests) only.
"""
