"""Which blob store a process uses, from its environment: the one place that choice is made.

``AGENT_BLOB_STORE`` picks it:

- ``local`` (default): a directory, ``AGENT_BLOB_DIR`` (default ``.data/agent-blobs``); every
  worker of a deployment must share it (one volume).
- ``s3``: a bucket of an S3-compatible service, ``AGENT_BLOB_S3_BUCKET``, under the optional key
  prefix ``AGENT_BLOB_S3_PREFIX``. Endpoint, region and credentials are read the standard AWS way
  (the SDK's own variables and chain): ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` for a
  service other than AWS S3, ``AWS_REGION``, and ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
  or a web identity (IRSA: ``AWS_ROLE_ARN`` and ``AWS_WEB_IDENTITY_TOKEN_FILE``).

The paid provider answers (:mod:`agent.paid_calls`) follow the choice: in ``AGENT_BLOB_DIR``
or in the bucket, under ``paid-answers/``. With ``s3`` nothing is written to ``AGENT_BLOB_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from temporalio.converter import PayloadCodec

from agent.blobs.s3 import S3BlobStore
from agent.blobs.store import LocalBlobStore
from workerkit import ConfigError

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

STORE_ENV = "AGENT_BLOB_STORE"
BLOB_DIR_ENV = "AGENT_BLOB_DIR"
DEFAULT_BLOB_DIR = Path(".data") / "agent-blobs"
S3_BUCKET_ENV = "AGENT_BLOB_S3_BUCKET"
S3_PREFIX_ENV = "AGENT_BLOB_S3_PREFIX"
STORE_KINDS = ("local", "s3")


def blob_store_from_env(
    codec: PayloadCodec | None = None, env: Mapping[str, str] | None = None
) -> LocalBlobStore | S3BlobStore:
    """The store ``env`` (default: this process's) names, sealing blobs with ``codec`` (the
    worker's payload codec). Settings are checked here; whether the service answers is
    :meth:`S3BlobStore.check`'s job."""
    env = os.environ if env is None else env
    kind = env.get(STORE_ENV) or "local"
    if kind == "local":
        return LocalBlobStore(blob_dir_from_env(env), codec)
    if kind == "s3":
        bucket = env.get(S3_BUCKET_ENV, "")
        if not bucket:
            raise ConfigError(f"{STORE_ENV}=s3 needs the bucket's name in {S3_BUCKET_ENV}.")
        return S3BlobStore(s3_client(env), bucket, env.get(S3_PREFIX_ENV, ""), codec)
    raise ConfigError(f"{STORE_ENV} must be one of {', '.join(STORE_KINDS)}, got {kind!r}.")


def blob_dir_from_env(env: Mapping[str, str] | None = None) -> Path:
    """``AGENT_BLOB_DIR``, created, checked writable."""
    env = os.environ if env is None else env
    root = Path(env.get(BLOB_DIR_ENV) or DEFAULT_BLOB_DIR).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot use {root} as the blob store: {err.strerror}. Set {BLOB_DIR_ENV} to a writable directory."
        ) from None
    if not os.access(root, os.W_OK):
        raise ConfigError(f"the blob store {root} is not writable. Set {BLOB_DIR_ENV} to a writable directory.")
    return root


def s3_client(env: Mapping[str, str]) -> S3Client:
    """A client for the endpoint, region and credentials ``env`` names (else the SDK's defaults)."""
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
    )
    config = Config(
        # Temporal retries the activity; the SDK's own retries only ride out a blip.
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=32,
    )
    if endpoint:
        # Services other than AWS S3 serve buckets by path, and not all take the SDK's newer
        # default checksums (CRC32 on every request).
        config = config.merge(
            Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
        )
    return session.client("s3", endpoint_url=endpoint, config=config)
