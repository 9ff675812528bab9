"""Worker Deployment Versioning rollouts (``python -m rollout``); see ops/runbooks/rollout.md."""

__version__ = "0.1.0"
