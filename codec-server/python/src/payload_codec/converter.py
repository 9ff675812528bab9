"""Temporal data converters that encrypt payloads and failure messages (SPEC §6)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from .codec import DEFAULT_MAX_INFLATED_BYTES, EncryptionCodec
from .keyring import KeyRing
from .observe import CodecObserver
from .sources import keyring_from_env


def data_converter(
    keyring: KeyRing,
    namespace: str,
    *,
    compression_threshold: int | None = None,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
    observer: CodecObserver | None = None,
) -> DataConverter:
    """The default converter plus encryption, with failure message and stack trace encoded.

    ``compression_threshold`` None: the key ring's setting for the namespace (off by default).
    Without encoded common attributes a failure's message and stack trace are stored in plain
    text next to encrypted payloads, which is where secrets leak first.
    """
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=EncryptionCodec(
            keyring,
            namespace,
            compression_threshold=compression_threshold,
            max_inflated_bytes=max_inflated_bytes,
            observer=observer,
        ),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter_from_env(
    namespace: str,
    environ: Mapping[str, str] | None = None,
    *,
    observer: CodecObserver | None = None,
    **options: int,
) -> DataConverter:
    """:func:`data_converter` with the key ring the environment selects (SPEC §5.2)."""
    return data_converter(keyring_from_env(environ), namespace, observer=observer, **options)
