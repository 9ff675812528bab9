"""Offline OpenAI-compatible model server: simulated chat (deterministic rules, no language model)
and real embeddings (all-MiniLM-L6-v2 in numpy, see ``modelserver.embedding``)."""

from __future__ import annotations

from ._app import create_app
from ._catalogue import DEFAULT_MODEL, MODELS
from ._settings import Settings

__version__ = "0.1.0"
__all__ = ["DEFAULT_MODEL", "MODELS", "Settings", "__version__", "create_app"]
