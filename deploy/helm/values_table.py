"""Rewrite the values table of the chart README from the '# --' comments of values.yaml.

Run after editing values.yaml: ``.venv/bin/python deploy/helm/values_table.py``. A key without a
comment of its own takes its parent's, with its relative path in brackets (resources, labels).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent / "durable-agents"
HEADER = "| key | default | description |\n|---|---|---|\n"


def comments(lines: list[str]) -> dict[str, str]:
    """Dotted key path -> its '# --' comment."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in lines:
        if match := re.match(r"^( *)([A-Za-z_]\w*):\s*(.*)$", line):
            indent = len(match.group(1))
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match.group(2))]
            if previous.strip().startswith("# --"):
                found[".".join(k for _, k in stack)] = previous.strip()[4:].strip()
        previous = line
    return found


def leaves(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            yield from leaves(value, path)
        else:
            yield path, value


def row(path: str, value: Any, described: dict[str, str]) -> str:
    description, rest = described.get(path), ""
    parts = path.split(".")
    for n in range(len(parts) - 1, 0, -1):
        if description is not None:
            break
        if (parent := ".".join(parts[:n])) in described:
            description, rest = described[parent], f" ({'.'.join(parts[n:])})"
    return f"| `{path}` | `{json.dumps(value, separators=(', ', ': '))}` | {description}{rest} |"


def main() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    described = comments(lines)
    rows = [row(path, value, described) for path, value in leaves(yaml.safe_load("\n".join(lines)))]
    readme = CHART / "README.md"
    head, header, _ = readme.read_text().partition(HEADER)
    if not header:
        raise SystemExit(f"{readme} has no values table to rewrite")
    readme.write_text(head + header + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
