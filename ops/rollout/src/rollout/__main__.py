"""``python -m rollout``: same as the ``rollout`` console script."""

from rollout.cli import run

run()
