"""Errors a person can act on: each message is one sentence naming what to fix."""


class ConfigError(ValueError):
    """A setting (environment variable, file) is missing or malformed; the message says which."""


class TemporalUnreachable(RuntimeError):
    """The Temporal server named by the environment configuration could not be reached."""
