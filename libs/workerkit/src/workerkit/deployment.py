"""Worker Deployment Versioning: which deployment version a worker process serves.

The version comes from the environment, under the names Temporal's worker controller sets
(``TEMPORAL_DEPLOYMENT_NAME``, ``TEMPORAL_WORKER_BUILD_ID``), so the same image runs
unversioned on a laptop and versioned in a cluster. Neither set: an unversioned worker, as
before. Both set: every worker of the process polls as that version, and the server routes
each workflow to a version by the deployment's current and ramping versions (``ops/rollout``).

No default versioning behaviour is given on purpose: the SDK then refuses to start a versioned
worker with a workflow type that does not declare ``versioning_behavior`` in ``@workflow.defn``,
so a new workflow cannot slip into a rollout without someone deciding pinned or auto-upgrade.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

from workerkit.errors import ConfigError

ENV_DEPLOYMENT_NAME = "TEMPORAL_DEPLOYMENT_NAME"
ENV_BUILD_ID = "TEMPORAL_WORKER_BUILD_ID"


def deployment_version(environ: Mapping[str, str] = os.environ) -> WorkerDeploymentVersion | None:
    """The version named by the environment, or None for an unversioned worker."""
    name = environ.get(ENV_DEPLOYMENT_NAME, "").strip()
    build_id = environ.get(ENV_BUILD_ID, "").strip()
    if not name and not build_id:
        return None
    if not (name and build_id):
        given, missing = (ENV_DEPLOYMENT_NAME, ENV_BUILD_ID) if name else (ENV_BUILD_ID, ENV_DEPLOYMENT_NAME)
        raise ConfigError(
            f"{given} is set but {missing} is not; set both for a versioned worker or neither for an unversioned one"
        )
    if "." in name:
        # The server writes a version as "<deployment>.<build id>" and splits at the first dot.
        raise ConfigError(f"{ENV_DEPLOYMENT_NAME} must not contain a dot, got {name!r}")
    return WorkerDeploymentVersion(deployment_name=name, build_id=build_id)


def deployment_config(environ: Mapping[str, str] = os.environ) -> WorkerDeploymentConfig | None:
    """``Worker(deployment_config=...)`` for the environment's version (None: unversioned)."""
    version = deployment_version(environ)
    return WorkerDeploymentConfig(version=version, use_worker_versioning=True) if version else None


def when_versioned(behavior: VersioningBehavior, environ: Mapping[str, str] = os.environ) -> VersioningBehavior:
    """``@workflow.defn(versioning_behavior=when_versioned(...))``: the workflow's declared
    behaviour in a versioned worker process, UNSPECIFIED in an unversioned one.

    temporalio 1.35 sends a declared behaviour with every workflow task completion even from an
    unversioned worker, and the server (1.32) rejects such a completion ("versioning behavior
    cannot be specified without deployment options being set with versioned mode"), so every
    workflow task would fail. The Go SDK sends it only from versioned workers. The decorator
    runs at import, after the process's environment is set, so this decides per process.
    """
    try:
        versioned = deployment_version(environ) is not None
    except ConfigError:
        # Not here: an import would fail with a traceback. run_workers reports it in one line.
        versioned = False
    return behavior if versioned else VersioningBehavior.UNSPECIFIED
