"""``rollout``: move a Worker Deployment's traffic between versions (ops/runbooks/rollout.md).

``status`` shows the routing and every version (state, drainage, pollers, backlog, running
workflows, error rate); ``ramp``, ``promote`` and ``rollback`` change the routing and print what
it was and what it is now. ``apply`` and ``guard`` are the Helm chart's hooks: ``apply`` makes the
routing what the release's values say (idempotent), ``guard`` refuses an upgrade that would take
the workers of a version that is still routed to or still has open pinned workflows. Every
failure is one sentence on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import NoReturn

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rollout import __version__
from rollout.deployment import Change, Deployment, DeploymentState, connect
from rollout.errors import RolloutError
from rollout.prometheus import prometheus_errors
from workerkit.deployment import ENV_DEPLOYMENT_NAME
from workerkit.process import exit_without_finalizing, report_errors

DEFAULT_NAMESPACE = "agents"


def _percentage(raw: str) -> float:
    try:
        value = float(raw.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {raw!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"the percentage must be between 0 and 100, got {raw}")
    return value


def _minutes(raw: str) -> timedelta:
    if not raw.isdigit() or int(raw) == 0:
        raise argparse.ArgumentTypeError(f"the window is a whole number of minutes above 0, got {raw!r}")
    return timedelta(minutes=int(raw))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout",
        description="Worker Deployment Versioning rollouts. See ops/runbooks/rollout.md.",
    )
    parser.add_argument("--version", action="version", version=f"rollout {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--deployment",
        "-d",
        default=os.environ.get(ENV_DEPLOYMENT_NAME) or None,
        help=f"Worker Deployment name (default: ${ENV_DEPLOYMENT_NAME})",
    )
    common.add_argument(
        "--namespace",
        "-n",
        default=os.environ.get("TEMPORAL_NAMESPACE") or DEFAULT_NAMESPACE,
        help=f"namespace of the deployment (default: $TEMPORAL_NAMESPACE, else {DEFAULT_NAMESPACE})",
    )
    common.add_argument("--address", help="Temporal frontend host:port (default: env config, else localhost:7233)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("status", parents=[common], help="routing, versions, drainage, pollers, error rates")
    p.add_argument(
        "--prometheus-url",
        default=os.environ.get("PROMETHEUS_URL") or None,
        help=(
            "Prometheus base URL for error rates by build_id (default: $PROMETHEUS_URL; without it, visibility counts)"
        ),
    )
    p.add_argument(
        "--window",
        type=_minutes,
        default=timedelta(minutes=15),
        metavar="MINUTES",
        help="window of the error figures, in minutes (default 15)",
    )

    p = commands.add_parser("ramp", parents=[common], help="send PERCENT of new workflows to version BUILD_ID")
    p.add_argument("build_id", metavar="BUILD_ID")
    p.add_argument("percentage", metavar="PERCENT", type=_percentage)

    p = commands.add_parser("promote", parents=[common], help="make version BUILD_ID current (ends its ramp)")
    p.add_argument("build_id", metavar="BUILD_ID")

    p = commands.add_parser(
        "apply",
        parents=[common],
        help="make the routing CURRENT (plus --ramp BUILD_ID PERCENT), changing only what differs (the chart's hook)",
    )
    p.add_argument("current", metavar="CURRENT")
    p.add_argument("--ramp", nargs=2, metavar=("BUILD_ID", "PERCENT"), help="also ramp BUILD_ID to PERCENT")
    p.add_argument(
        "--wait",
        type=int,
        default=300,
        metavar="SECONDS",
        help="wait this long for the versions' workers to poll first (default 300)",
    )

    p = commands.add_parser(
        "guard",
        parents=[common],
        help="fail unless every version outside --keep is drained: retiring it strands no workflow",
    )
    p.add_argument("--keep", required=True, metavar="BUILD_IDS", help="comma-separated build ids that keep workers")

    commands.add_parser(
        "rollback",
        parents=[common],
        help="stop the running ramp, or (with none) make the previously current version current again",
    )
    return parser


def render_status(out: Console, state: DeploymentState) -> None:
    out.print(
        f"Deployment [bold]{escape(state.name)}[/bold] in namespace {escape(state.namespace)}: "
        f"{escape(state.routing.describe())}"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    # The state says draining/drained too (the JSON has the drainage status on its own); the
    # ramp percentage is in the line above. Narrow enough for an 80-column terminal.
    for column in ("build id", "state", "pollers", "backlog", "running", "failed/closed", "err/min"):
        table.add_column(
            column, justify="left" if column in ("build id", "state") else "right", no_wrap=True, min_width=len(column)
        )
    for v in state.versions:
        failed = "-" if v.failed is None else f"{v.failed:g}/{v.closed:g}"
        if v.error_rate is not None:
            failed += f" ({v.error_rate:.1%})"
        table.add_row(
            escape(v.build_id),
            v.status,
            str(v.pollers),
            "-" if v.backlog is None else f"{v.backlog} ({v.backlog_age_s:.0f}s)" if v.backlog else "0",
            str(v.running),
            failed,
            "-" if v.errors_per_min is None else f"{v.errors_per_min:.2f}",
            style="red" if v.pollers == 0 and v.status in ("current", "ramping") else None,
        )
    out.print(table)
    source = next((v.error_source for v in state.versions if v.error_source), "")
    if source == "visibility":
        out.print(
            "Error figures: failed (failed, timed out, terminated) of closed workflows, from visibility; "
            "set PROMETHEUS_URL for the SDK failure counters."
        )


def _state_json(state: DeploymentState) -> dict:
    data = asdict(state)
    for version, raw in zip(state.versions, data["versions"], strict=False):
        raw["error_rate"] = version.error_rate
        raw["last_current_time"] = version.last_current_time.isoformat() if version.last_current_time else None
    return data


def _deployment_name(args: argparse.Namespace) -> str:
    if not args.deployment:
        raise RolloutError(f"name the deployment with --deployment or {ENV_DEPLOYMENT_NAME}")
    return args.deployment


async def _run(args: argparse.Namespace, out: Console) -> int:
    name = _deployment_name(args)
    deployment = Deployment(await connect(args.namespace, args.address), name)
    if args.command == "status":
        state = await deployment.state()
        if args.prometheus_url:
            await prometheus_errors(state, args.prometheus_url, args.window)
        else:
            await deployment.visibility_errors(state, args.window)
        if args.json:
            out.print_json(json.dumps(_state_json(state)))
        else:
            render_status(out, state)
        return 0
    if args.command == "apply":
        return await _apply(args, deployment, out)
    if args.command == "guard":
        keep = {b.strip() for b in args.keep.split(",") if b.strip()}
        if blockers := await deployment.retirement_blockers(keep):
            raise RolloutError(
                f"refusing to retire versions of {name!r} that are not drained ({'; '.join(blockers)}): "
                "keep them in the release until `rollout status` shows them drained"
            )
        out.print(f"Deployment {escape(name)}: every version outside {', '.join(sorted(keep))} is drained.")
        return 0
    change: Change
    if args.command == "ramp":
        change = await deployment.ramp(args.build_id, args.percentage)
    elif args.command == "promote":
        change = await deployment.promote(args.build_id)
    elif args.command == "rollback":
        change = await deployment.rollback()
    else:
        raise AssertionError(args.command)
    if args.json:
        out.print_json(json.dumps(asdict(change)))
    else:
        out.print(f"Deployment {escape(deployment.name)}: {escape(change.describe())}.")
    return 0


async def _apply(args: argparse.Namespace, deployment: Deployment, out: Console) -> int:
    ramping, percentage = (args.ramp[0], float(args.ramp[1].rstrip("%"))) if args.ramp else (None, 0.0)
    await deployment.wait_for_pollers([args.current, *([ramping] if ramping else [])], timedelta(seconds=args.wait))
    changes = await deployment.apply(args.current, ramping, percentage)
    if args.json:
        out.print_json(json.dumps([asdict(c) for c in changes]))
    elif not changes:
        out.print(
            f"Deployment {escape(deployment.name)}: {escape((await deployment.routing()).describe())}; unchanged."
        )
    for change in changes if not args.json else ():
        out.print(f"Deployment {escape(deployment.name)}: {escape(change.describe())}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "ramp", None):
        try:
            _percentage(args.ramp[1])
        except argparse.ArgumentTypeError as bad:
            parser.error(f"--ramp: {bad}")
    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    return report_errors(
        "rollout", lambda: asyncio.run(_run(args, out)), expected=(RolloutError,), debug=args.debug, err=err
    )


def run() -> NoReturn:
    """The console script: ``main``, then an exit that avoids the SDK's finalization crash."""
    exit_without_finalizing(main())
