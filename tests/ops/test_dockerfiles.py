"""Every image's build context holds what its build needs.

There is no Docker engine where the tests run, so the images are never built here; what can be
checked without one is the mistake that breaks a build on a team's first try: a workspace member
or a local Go module the image needs that no ``COPY`` brings into the build. Both Python images
build from the repository root with ``uv sync --package <name>``, which needs every workspace
member that package depends on; the Go image builds a module whose ``replace`` directives point
at directories outside it.
"""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path, PurePosixPath

import pytest
from support.dockerfile import copied_from_context, instructions
from support.helm_chart import COMPONENT_DOCKERFILES

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(p.relative_to(REPO) for p in REPO.glob("*/*/Dockerfile"))


def is_copied(path: PurePosixPath, sources: list[PurePosixPath]) -> bool:
    """Sources are relative to the repository root, the context every image builds from; a
    ``COPY . .`` is not accepted (it would mean a context of the Dockerfile's own directory)."""
    return any(path == s or (str(s) != "." and s in path.parents) for s in sources)


@functools.cache
def workspace_members() -> dict[str, tuple[PurePosixPath, list[str]]]:
    """Package name -> (directory, names of its dependencies)."""
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members = {}
    for directory in root["tool"]["uv"]["workspace"]["members"]:
        project = tomllib.loads((REPO / directory / "pyproject.toml").read_text())["project"]
        requirements = [re.split(r"[\s<>=!~\[;]", d, maxsplit=1)[0] for d in project.get("dependencies", [])]
        members[project["name"]] = (PurePosixPath(directory), requirements)
    return members


def member_closure(package: str) -> set[str]:
    members = workspace_members()
    needed, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo += [d for d in members[name][1] if d in members]
    return needed


def test_every_image_the_chart_runs_is_checked() -> None:
    assert set(COMPONENT_DOCKERFILES.values()) <= {str(p) for p in DOCKERFILES}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=str)
def test_the_build_context_holds_every_local_dependency(dockerfile: Path) -> None:
    sources = copied_from_context(REPO / dockerfile)
    runs = " ".join(rest for keyword, rest in instructions(REPO / dockerfile) if keyword == "RUN")
    missing: list[str] = []

    members = workspace_members()
    for package in sorted(set(re.findall(r"--package[ =](\S+)", runs))):
        for name in sorted(member_closure(package)):
            directory = members[name][0]
            for part in ("pyproject.toml", "src"):
                if not is_copied(directory / part, sources):
                    missing.append(f"{directory / part} (workspace member {name}, needed by {package})")

    if "go build" in runs:
        module = dockerfile.parent
        gomod = (REPO / module / "go.mod").read_text()
        local = re.findall(r"^replace\s+\S+\s+=>\s+(\.\.?/\S+)", gomod, flags=re.MULTILINE)
        for target in [".", *local]:
            directory = PurePosixPath((REPO / module / target).resolve().relative_to(REPO).as_posix())
            for part in ("go.mod", "go.sum"):
                if not is_copied(directory / part, sources):
                    missing.append(f"{directory / part} (Go module built by {dockerfile})")

    assert runs, f"{dockerfile} has no RUN instruction to check"
    assert not missing, f"{dockerfile} builds from the repository root but never copies: " + "; ".join(missing)


def test_the_check_sees_a_missing_member() -> None:
    """The check itself: a context without payload-codec fails for the business image."""
    sources = [PurePosixPath("services/business-py/src"), PurePosixPath("services/business-py/pyproject.toml")]
    assert "payload-codec" in member_closure("business")
    assert not is_copied(PurePosixPath("codec-server/python/src"), sources)
