"""Worker Deployment Versioning settings from the environment (workerkit.deployment)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion

from workerkit import ConfigError
from workerkit.deployment import deployment_config, when_versioned

VERSIONED = {"TEMPORAL_DEPLOYMENT_NAME": "support-agent", "TEMPORAL_WORKER_BUILD_ID": " 2026-11-23.1 "}


def test_both_variables_give_a_versioned_worker() -> None:
    config = deployment_config(VERSIONED)
    assert config is not None and config.use_worker_versioning
    assert config.version == WorkerDeploymentVersion("support-agent", "2026-11-23.1")
    # No default: the SDK then insists that every workflow type declares its own behaviour.
    assert config.default_versioning_behavior == VersioningBehavior.UNSPECIFIED
    assert when_versioned(VersioningBehavior.PINNED, VERSIONED) == VersioningBehavior.PINNED


def test_neither_variable_gives_an_unversioned_worker() -> None:
    assert deployment_config({}) is None
    assert deployment_config({"TEMPORAL_DEPLOYMENT_NAME": " ", "TEMPORAL_WORKER_BUILD_ID": ""}) is None
    # An unversioned worker must not send a behaviour: the server would reject its workflow tasks.
    assert when_versioned(VersioningBehavior.PINNED, {}) == VersioningBehavior.UNSPECIFIED


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"TEMPORAL_DEPLOYMENT_NAME": "support-agent"},
            "TEMPORAL_DEPLOYMENT_NAME is set but TEMPORAL_WORKER_BUILD_ID is not",
        ),
        ({"TEMPORAL_WORKER_BUILD_ID": "v2"}, "TEMPORAL_WORKER_BUILD_ID is set but TEMPORAL_DEPLOYMENT_NAME is not"),
        ({"TEMPORAL_DEPLOYMENT_NAME": "support.agent", "TEMPORAL_WORKER_BUILD_ID": "v2"}, "must not contain a dot"),
    ],
)
def test_half_or_malformed_settings_are_one_clear_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        deployment_config(environ)
    # At import time (the decorator) it must not raise; the worker's start-up reports it.
    assert when_versioned(VersioningBehavior.PINNED, environ) == VersioningBehavior.UNSPECIFIED


def test_a_worker_process_with_half_the_settings_exits_with_that_sentence() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env.update(TEMPORAL_WORKER_BUILD_ID="v2", TEMPORAL_ADDRESS="127.0.0.1:1")
    done = subprocess.run(
        [sys.executable, "-m", "business.worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "business-worker: TEMPORAL_WORKER_BUILD_ID is set but TEMPORAL_DEPLOYMENT_NAME is not; "
        "set both for a versioned worker or neither for an unversioned one"
    )
