"""Python side of the Nexus contracts in ``nexus/``.

The JSON Schemas and examples in ``nexus/<service>/`` are the source of truth; the
dataclasses and service definitions here must round-trip those examples exactly
(``nexus/python/tests`` checks it), and the Go side has the same test.
"""

from nexus_contracts.endpoints import Endpoint, load_endpoints

__all__ = ["Endpoint", "load_endpoints"]
