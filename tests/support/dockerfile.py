"""Reading our Dockerfiles without a Docker engine (the tests check what an image would hold)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path, PurePosixPath


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest of the line) pairs, continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if text:
            keyword, _, rest = text.partition(" ")
            logical.append((keyword.upper(), rest.strip()))
    return logical


def image_config(dockerfile: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """ENTRYPOINT, CMD and ENV of the image: the last stage's (exec form, as ours all are)."""
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    entrypoint: list[str] = []
    cmd: list[str] = []
    env: dict[str, str] = {}
    for keyword, rest in steps[last_from + 1 :]:
        if keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif keyword == "CMD":
            cmd = json.loads(rest)
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return entrypoint, cmd, env


def copied_from_context(dockerfile: Path) -> list[PurePosixPath]:
    """Sources of the COPY instructions that read the build context (not another stage), relative
    to the repository root: the context every image of ours builds from."""
    sources = []
    for keyword, rest in instructions(dockerfile):
        args = shlex.split(rest)
        if keyword != "COPY" or any(a.startswith("--from") for a in args):
            continue
        paths = [a for a in args if not a.startswith("--")]
        sources += [PurePosixPath(p.rstrip("/")) for p in paths[:-1]]
    return sources
