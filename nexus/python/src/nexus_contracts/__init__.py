"""Python side of the Nexus contracts in ``nexus/``.

The JSON Schemas and examples in ``nexus/<service>/`` are the source of truth; the
dataclasses, service definitions and limit constants here are held to them field by field and
limit by limit (``nexus/python/tests``), and the Go side has the same tests. ``nexus/README.md``
says how to change a contract or add an operation.
"""

from nexus_contracts.endpoints import Endpoint, load_endpoints

__all__ = ["Endpoint", "load_endpoints"]
