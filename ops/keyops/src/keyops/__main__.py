"""``python -m keyops``: same as the ``keyops`` console script."""

from keyops.cli import run

run()
