"""``keyops``: rotate payload keys, report which keys histories use, export decoded histories.

Every failure is one sentence on stderr and a non-zero exit. Key material and tokens are never
printed: only key ids, which are public (they sit in every payload's metadata).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keyops import __version__
from keyops.audit import read_chain_key, verify_log, who_saw
from keyops.codec_client import CodecServerClient, read_token
from keyops.errors import KeyOpsError
from keyops.export import export_history
from keyops.report import UNENCRYPTED, Report, build_report
from keyops.store import Rotation, activate, open_store, retire, rotate
from keyops.temporal import DEFAULT_ADDRESS, connect_raw
from payload_codec import CodecConfigError
from payload_codec.auditlog import Verification
from workerkit.process import exit_without_finalizing, report_errors


def _add_store_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--keyring-file", metavar="PATH", help="a key ring JSON document (CODEC_KEYRING_FILE layout)")
    group.add_argument(
        "--keyring-dir", metavar="DIR", help="a directory of <id>.key files and an `active` file (a Kubernetes Secret)"
    )


def _add_audit_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audit-log", required=True, type=Path, help="the codec server's audit log (CODEC_SERVER_AUDIT_LOG)"
    )
    parser.add_argument(
        "--chain-key-file", type=Path, help="the audit chain key (CODEC_SERVER_AUDIT_CHAIN_KEY_FILE), if set"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyops",
        description="Payload key operations for the encrypting codec (codec-server/SPEC.md). See ops/keyops/README.md.",
    )
    parser.add_argument("--version", action="version", version=f"keyops {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("rotate", help="add a fresh random key and make it the active key for a namespace")
    p.add_argument("--namespace", "-n", required=True, help="namespace, or '*' for the default of every namespace")
    _add_store_args(p)
    p.add_argument("--key-id", help="id for the new key (default: <namespace>-YYYYMMDD-<6 hex>)")
    p.add_argument(
        "--stage",
        action="store_true",
        help="add the key without activating it (first half of a zero-error rolling rotation; then `keyops activate`)",
    )
    p.add_argument("--create", action="store_true", help="start a new key ring if there is none at the path")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = commands.add_parser("activate", help="make a key already in the ring the active key for a namespace")
    p.add_argument("--namespace", "-n", required=True, help="namespace, or '*' for the default")
    p.add_argument("--key-id", required=True)
    _add_store_args(p)
    p.add_argument("--json", action="store_true")

    p = commands.add_parser("retire", help="remove a key no namespace encrypts with (check `keyops report` first)")
    p.add_argument("--key-id", required=True)
    _add_store_args(p)

    p = commands.add_parser("report", help="count the payloads and workflows that reference each key id")
    p.add_argument("--namespace", "-n", action="append", required=True, help="namespace to scan (repeat for several)")
    p.add_argument("--address", help=f"Temporal frontend host:port (default: env config, else {DEFAULT_ADDRESS})")
    p.add_argument("--query", help="visibility query to narrow the workflows (default: all, open and closed)")
    _add_store_args(p, required=False)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = commands.add_parser("export", help="write one history decoded by the codec server (audited)")
    p.add_argument("--namespace", "-n", required=True)
    p.add_argument("--workflow-id", required=True)
    p.add_argument("--run-id", help="default: the latest run")
    p.add_argument("--codec-endpoint", required=True, help="codec server base URL, e.g. http://127.0.0.1:8404")
    p.add_argument("--token-file", required=True, type=Path, help="file holding your bearer token for the codec server")
    p.add_argument("--address", help=f"Temporal frontend host:port (default: env config, else {DEFAULT_ADDRESS})")
    p.add_argument("-o", "--output", type=Path, help="file to write (mode 0600; default: standard output)")

    p = commands.add_parser(
        "who-saw", help="who asked the codec server to decode this workflow's payloads (from its audit log)"
    )
    p.add_argument("--namespace", "-n", required=True)
    p.add_argument("--workflow-id", required=True)
    p.add_argument("--run-id", help="default: the latest run")
    _add_audit_args(p)
    p.add_argument("--address", help=f"Temporal frontend host:port (default: env config, else {DEFAULT_ADDRESS})")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")

    p = commands.add_parser(
        "audit-verify", help="check the codec server's audit log hash chain; name the first altered entry"
    )
    _add_audit_args(p)
    p.add_argument("--json", action="store_true")
    return parser


def _next_steps(out: Console, rotation: Rotation) -> None:
    out.print(
        "[bold]Next:[/bold] restart every process that loads this key ring "
        "(workers and the codec server read keys only at start-up):"
    )
    out.print("  dev stack:   make restart-workers")
    out.print(
        "  Kubernetes:  apply the Secret from the updated directory, then "
        "kubectl rollout restart every workload that mounts it (ops/keyops/README.md)"
    )
    out.print(
        "Keep the previous key: old histories still need it. Retire it only when `keyops report` "
        "counts 0 payloads for it in every namespace (see ops/runbooks/key-rotation.md)."
    )


def _print_rotation(out: Console, rotation: Rotation, verb: str) -> None:
    target = "every namespace (*)" if rotation.namespace == "*" else f"namespace {rotation.namespace}"
    r = rotation
    if r.activated:
        out.print(f"{verb} the active key for {escape(target)} in {escape(r.location)}")
        out.print(f"  active key   [bold green]{escape(r.new_key_id)}[/bold green]")
    else:
        out.print(f"Staged a new key for {escape(target)} in {escape(r.location)} (not active yet)")
        out.print(f"  new key      [bold]{escape(r.new_key_id)}[/bold]")
    if r.previous_key_id:
        still = "still active" if not r.activated else "kept for decryption"
        out.print(f"  previous     {escape(r.previous_key_id)} ({still})")
    out.print(f"  key ring     {r.key_count} keys ({r.layout} layout)")
    if r.unaffected:
        listed = ", ".join(f"{ns}={kid}" for ns, kid in r.unaffected.items())
        out.print(
            "  [yellow]note[/yellow]         these namespaces have their own active key and keep it: "
            f"{escape(listed)}; "
            "rotate them with --namespace NAME"
        )
    if r.activated:
        _next_steps(out, r)
    else:
        out.print(
            "[bold]Next:[/bold] roll the key ring out to every worker and the codec server (restart them) so all can "
            f"decrypt with it, then: keyops activate --namespace '{escape(r.namespace)}' "
            f"--key-id {escape(r.new_key_id)} "
            "and restart again."
        )


def _report_rotation(args: argparse.Namespace, out: Console, rotation: Rotation, verb: str) -> int:
    if args.json:
        sys.stdout.write(json.dumps(rotation.as_dict(), indent=2) + "\n")
    else:
        _print_rotation(out, rotation, verb)
    return 0


def _cmd_rotate(args: argparse.Namespace, out: Console) -> int:
    store = open_store(args.keyring_file, args.keyring_dir)
    return _report_rotation(
        args,
        out,
        rotate(store, args.namespace, key_id=args.key_id, activate=not args.stage, create=args.create),
        "Rotated",
    )


def _cmd_activate(args: argparse.Namespace, out: Console) -> int:
    store = open_store(args.keyring_file, args.keyring_dir)
    return _report_rotation(args, out, activate(store, args.namespace, args.key_id), "Switched")


def _cmd_retire(args: argparse.Namespace, out: Console) -> int:
    store = open_store(args.keyring_file, args.keyring_dir)
    left = retire(store, args.key_id)
    out.print(
        f"Removed key {escape(args.key_id)} from {escape(str(store))}; {left} keys left. "
        "Restart the workers and the codec server so they drop it too."
    )
    return 0


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "unknown"
    hours = value.total_seconds() / 3600
    if hours >= 24:
        days = hours / 24
        return f"{days:g} day" + ("" if days == 1 else "s")
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


def render_report(out: Console, report: Report) -> None:
    for ns in report.namespaces:
        vanished = f", {ns.vanished} deleted while scanning" if ns.vanished else ""
        table = Table(
            title=(
                f"namespace {ns.namespace}: {ns.workflows} workflow{'' if ns.workflows == 1 else 's'} scanned"
                f"{vanished}, retention {_duration(ns.retention)}"
            ),
            title_justify="left",
        )
        # Ids never wrap: an operator copies them into `keyops retire`.
        table.add_column("key id", no_wrap=True)
        table.add_column("payloads", justify="right")
        table.add_column("workflows", justify="right")
        table.add_column("open", justify="right")
        table.add_column("references gone by")
        for label, usage in sorted(ns.keys.items(), key=lambda item: (item[0] == UNENCRYPTED, item[0])):
            if label == UNENCRYPTED:
                gone = "-"
            elif usage.open_workflows:
                gone = "open workflows still use it"
            else:
                end = ns.references_end_by(label)
                gone = end.strftime("%Y-%m-%d %H:%M UTC") if end else "unknown"
            style = "yellow" if label == UNENCRYPTED else None
            table.add_row(
                escape(label), str(usage.payloads), str(usage.workflows), str(usage.open_workflows), gone, style=style
            )
        if not ns.keys:
            table.add_row("(no payloads)", "0", "0", "0", "-")
        out.print(table)
        if ns.unencrypted_locations:
            out.print(
                "  unencrypted payloads by field (search attributes, and headers by default, are never encrypted; "
                "anything else here was written without the codec):"
            )
            for location, count in sorted(ns.unencrypted_locations.items()):
                out.print(f"    {count:6d}  {escape(location)}")
    if len(report.namespaces) > 1:
        totals = Table(title="all scanned namespaces", title_justify="left")
        for column in ("key id", "payloads", "workflows", "open"):
            totals.add_column(column, justify="left" if column == "key id" else "right", no_wrap=column == "key id")
        for label, usage in sorted(report.totals().items()):
            totals.add_row(escape(label), str(usage.payloads), str(usage.workflows), str(usage.open_workflows))
        out.print(totals)
    if report.keyring_ids is not None:
        unreferenced = report.unreferenced_keys()
        if unreferenced:
            out.print(
                "Key ring ids no scanned history references: "
                f"[bold]{escape(', '.join(unreferenced))}[/bold]. Before retiring one, scan every namespace that "
                "uses this key ring and check archived histories and exported files that may still need it."
            )
        else:
            out.print("Every key in the key ring is referenced by at least one scanned history.")


async def _cmd_report(args: argparse.Namespace, out: Console) -> int:
    keyring_ids = None
    if args.keyring_file or args.keyring_dir:
        keyring_ids = open_store(args.keyring_file, args.keyring_dir).load().key_ids
    namespaces = list(dict.fromkeys(args.namespace))
    client = await connect_raw(namespaces[0], args.address)
    address = client.service_client.config.target_host
    report = await build_report(client, address, namespaces, args.query, keyring_ids)
    if args.json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        render_report(out, report)
    return 0


async def _cmd_export(args: argparse.Namespace, out: Console, err: Console) -> int:
    codec = CodecServerClient(args.codec_endpoint, read_token(args.token_file))
    if args.output is not None and not args.output.parent.is_dir():
        raise KeyOpsError(f"the directory of --output ({args.output.parent}) does not exist")
    client = await connect_raw(args.namespace, args.address)
    summary = await export_history(client, args.workflow_id, args.run_id, codec, args.output)
    # The summary goes to stderr so that `keyops export > file` leaves a clean JSON file.
    err.print(
        f"Exported workflow {escape(summary.workflow_id)} run {summary.run_id} "
        f"of namespace {escape(summary.namespace)}: {summary.events} events, "
        f"{summary.decoded} of {summary.payloads} payloads decoded by {escape(codec.endpoint)} "
        f"(key ids: {escape(', '.join(summary.key_ids) or 'none')})."
    )
    audited = (
        "The codec server's audit log records this export under your token's subject."
        if summary.decoded
        else "Nothing in it was encrypted, so the codec server was not asked (and did not audit it)."
    )
    err.print(
        f"Written to {escape(summary.output)} (sha256 {summary.sha256}). "
        f"This is plain text: keep it as carefully as the keys. {audited}"
    )
    return 0


def _chain_line(chain: Verification) -> str:
    if chain.problem is None:
        legacy = f" (after {chain.legacy_lines} lines from before chaining)" if chain.legacy_lines else ""
        return f"audit log intact: {chain.entries} entries{legacy}, head seq {chain.head_seq} {chain.head}"
    return f"audit log NOT intact: {chain.problem.message}"


def _cmd_audit_verify(args: argparse.Namespace, out: Console) -> int:
    chain = verify_log(args.audit_log, read_chain_key(args.chain_key_file))
    if args.json:
        sys.stdout.write(json.dumps(chain.as_dict(), indent=2) + "\n")
    else:
        out.print(escape(_chain_line(chain)))
    return 0 if chain.ok else 1


async def _cmd_who_saw(args: argparse.Namespace, out: Console) -> int:
    client = await connect_raw(args.namespace, args.address)
    answer = await who_saw(client, args.workflow_id, args.run_id, args.audit_log, read_chain_key(args.chain_key_file))
    if args.json:
        sys.stdout.write(json.dumps(answer.as_dict(), indent=2) + "\n")
        return 0
    out.print(
        f"workflow {escape(answer.workflow_id)} run {answer.run_id} of namespace {escape(answer.namespace)}: "
        f"{answer.encrypted_payloads} distinct encrypted payloads in its history"
    )
    table = Table(title="codec server requests naming them", title_justify="left")
    for column in ("when (UTC)", "who", "auth", "from", "operation", "outcome", "payloads"):
        table.add_column(column, justify="right" if column == "payloads" else "left")
    for a in answer.accesses:
        table.add_row(
            escape(a.ts),
            escape(a.subject or "(unauthenticated)"),
            escape(a.auth_method or "-"),
            escape(a.client or "-"),
            escape(a.operation),
            escape(a.outcome),
            str(a.payloads_matched),
            style=None if a.saw_plaintext else "dim",
        )
    out.print(table)
    out.print(f"saw plaintext: {escape(', '.join(answer.subjects) or 'nobody')}")
    if answer.chain is not None:
        out.print(escape(_chain_line(answer.chain)), style=None if answer.chain.ok else "bold red")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False)

    def command() -> int:
        if args.command == "rotate":
            return _cmd_rotate(args, out)
        if args.command == "activate":
            return _cmd_activate(args, out)
        if args.command == "retire":
            return _cmd_retire(args, out)
        if args.command == "report":
            return asyncio.run(_cmd_report(args, out))
        if args.command == "export":
            return asyncio.run(_cmd_export(args, out, err))
        if args.command == "who-saw":
            return asyncio.run(_cmd_who_saw(args, out))
        if args.command == "audit-verify":
            return _cmd_audit_verify(args, out)
        raise AssertionError(args.command)

    return report_errors("keyops", command, expected=(KeyOpsError, CodecConfigError), debug=args.debug, err=err)


def run() -> NoReturn:
    """The console script: ``main``, then an exit that avoids the SDK's finalization crash."""
    exit_without_finalizing(main())
