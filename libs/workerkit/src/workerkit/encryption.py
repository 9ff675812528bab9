"""Payload encryption for every Python client and worker (codec-server/SPEC.md).

On unless ``PAYLOAD_ENCRYPTION=off``: a process without keys refuses to start rather than
write plain text to the Temporal server.
"""

from __future__ import annotations

import logging
import os

from temporalio.converter import DataConverter

from payload_codec import CodecConfigError, CodecObserver, data_converter_from_env
from workerkit.errors import ConfigError

ENV_PAYLOAD_ENCRYPTION = "PAYLOAD_ENCRYPTION"

log = logging.getLogger(__name__)


def payload_data_converter(namespace: str, observer: CodecObserver | None = None) -> DataConverter:
    """The data converter for ``namespace``: encrypting with its active key, or plain if opted out."""
    if os.environ.get(ENV_PAYLOAD_ENCRYPTION) == "off":
        log.warning(
            "payload encryption is off (%s=off): the Temporal server stores payloads in plain text",
            ENV_PAYLOAD_ENCRYPTION,
        )
        return DataConverter.default
    try:
        return data_converter_from_env(namespace, observer=observer)
    except CodecConfigError as err:
        raise ConfigError(
            f"payload encryption: {err} (set {ENV_PAYLOAD_ENCRYPTION}=off to run without it, never in production)"
        ) from None
