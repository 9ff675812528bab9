"""``replay-check``: the pre-release gate. Export the histories of a cluster's running and recent
workflows (encrypted, as the server holds them) into a local corpus, then replay the whole corpus
against the current code, Python and Go. See docs/versioning.md.

Exit 0 when every history replays, 1 when one does not (one line names each), 2 on bad input.
Key material is never printed; histories are never written decoded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keyops.errors import KeyOpsError
from keyops.temporal import DEFAULT_ADDRESS, connect_raw, fetch_raw_history, list_executions
from payload_codec import CodecConfigError, KeyRing, keyring_from_env
from replaygate.corpus import Corpus, CorpusEntry
from replaygate.errors import ReplayGateError
from replaygate.replay import GO_NAMESPACES, ReplayOutcome, registered_types, replay_python
from workerkit.process import exit_without_finalizing

EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_CORPUS = Path(".data/replay-corpus")
DEFAULT_NAMESPACES = ("agents", "business", "retrieval")
DEFAULT_GO_REPLAYER = Path("bin/retrieval-replay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replay-check",
        description="Add a cluster's running and recent workflow histories to a local corpus and replay "
        "the corpus against the current code. Connection: Temporal env config (TEMPORAL_ADDRESS, "
        "TEMPORAL_API_KEY, TLS variables); key ring: CODEC_KEYRING_FILE, CODEC_KEYRING_DIR or CODEC_KEYRING.",
    )
    parser.add_argument("--address", help=f"Temporal frontend (default: TEMPORAL_ADDRESS, else {DEFAULT_ADDRESS})")
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        help=f"namespace to export (repeatable; default: {', '.join(DEFAULT_NAMESPACES)})",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("REPLAY_CORPUS", DEFAULT_CORPUS)),
        help="local corpus directory (default: REPLAY_CORPUS, else %(default)s)",
    )
    parser.add_argument(
        "--since-hours",
        type=float,
        default=24.0,
        help="also export runs closed in this many hours (default: %(default)s)",
    )
    parser.add_argument(
        "--limit", type=int, default=200, help="at most this many runs per namespace (default: %(default)s)"
    )
    parser.add_argument("--no-export", action="store_true", help="replay the corpus as it is, without a cluster")
    parser.add_argument(
        "--go-replayer",
        type=Path,
        default=DEFAULT_GO_REPLAYER,
        help="the built retrieval-replay command, for Go workflows (default: %(default)s; `make build` builds it)",
    )
    return parser


def _recent_query(since: timedelta) -> str:
    cutoff = (datetime.now(UTC) - since).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"ExecutionStatus = 'Running' OR CloseTime > '{cutoff}'"


async def export(corpus: Corpus, address: str | None, namespaces: Sequence[str], since: timedelta, limit: int) -> int:
    """Add each namespace's running and recent runs to ``corpus``; how many were added."""
    added = 0
    for namespace in namespaces:
        client = await connect_raw(namespace, address)
        known = {e.run_id for e in corpus.entries}
        types = registered_types(namespace)
        count = 0
        async for ref in list_executions(client, _recent_query(since)):
            if count >= limit:
                break
            count += 1
            # A closed run's history never changes; an open one is taken again, it has grown.
            if ref.run_id in known and not ref.open:
                continue
            # A closed run of a type this build no longer has (or never had: another team's
            # worker, a test probe) will never be replayed by our workers. An open one is kept:
            # it fails the check, because no worker of this build could carry it on.
            if not ref.open and types is not None and ref.workflow_type not in types:
                continue
            history = await fetch_raw_history(client, ref.workflow_id, ref.run_id)
            where = address or os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS)
            corpus.add(namespace, ref.workflow_id, ref.run_id, history, note=f"replay-check: {ref.status} on {where}")
            added += 1
    corpus.save()
    return added


def replay_go(corpus: Corpus, replayer: Path) -> list[ReplayOutcome]:
    entries = {e.run_id: e for e in corpus.entries if e.namespace in GO_NAMESPACES}
    if not entries:
        return []
    if not replayer.is_file():
        raise ReplayGateError(
            f"the corpus holds Go histories but {replayer} does not exist; build it with `make build` "
            "or pass --go-replayer"
        )
    done = subprocess.run([str(replayer), "-corpus", str(corpus.root)], capture_output=True, text=True, check=False)
    if done.returncode not in (0, EXIT_FAILED):
        raise ReplayGateError(f"{replayer} failed: {done.stderr.strip() or f'exit status {done.returncode}'}")
    outcomes = []
    for line in done.stdout.splitlines():
        item = json.loads(line)
        outcomes.append(ReplayOutcome(entries[item["run_id"]], item["error"] or None))
    return outcomes


def _table(outcomes: Sequence[ReplayOutcome]) -> Table:
    table = Table(title="replay of the corpus against the current code")
    for column in ("namespace", "workflow type", "workflow id", "run", "result"):
        # Ids are what an operator searches for: wrapped, never cut short.
        table.add_column(column, overflow="fold")
    for o in outcomes:
        e: CorpusEntry = o.entry
        result = (
            "[green]ok[/green]"
            if o.ok
            else "[red]NON-DETERMINISTIC[/red]"
            if o.nondeterministic
            else "[red]FAILED[/red]"
        )
        table.add_row(e.namespace, e.workflow_type, escape(e.workflow_id), e.run_id[:8], result)
    return table


async def check(args: argparse.Namespace, keyring: KeyRing, out: Console) -> list[ReplayOutcome]:
    corpus = Corpus.load(args.corpus)
    if not args.no_export:
        namespaces = args.namespaces or list(DEFAULT_NAMESPACES)
        added = await export(corpus, args.address, namespaces, timedelta(hours=args.since_hours), args.limit)
        out.print(f"exported {added} history(ies) from {', '.join(namespaces)} into {corpus.root}")
    if not corpus.entries:
        raise ReplayGateError(f"the corpus {corpus.root} is empty; nothing to replay")
    return await replay_python(corpus, keyring) + replay_go(corpus, args.go_replayer)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    if args.limit < 1 or args.since_hours < 0:
        err.print("[red]replay-check:[/red] --limit must be at least 1 and --since-hours not negative")
        return EXIT_USAGE
    try:
        keyring = keyring_from_env()
        outcomes = asyncio.run(check(args, keyring, out))
    except (ReplayGateError, KeyOpsError, CodecConfigError) as exc:
        err.print(f"[red]replay-check:[/red] {escape(str(exc))}")
        return EXIT_USAGE
    out.print(_table(outcomes))
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        err.print(f"[red]replay-check: FAILED:[/red] {escape(o.error or '')}")
    out.print(f"{len(outcomes) - len(failed)} of {len(outcomes)} histories replay on the current code")
    return EXIT_FAILED if failed else 0


def run() -> NoReturn:
    """The console script: ``main``, then an exit that avoids the SDK's finalization crash."""
    exit_without_finalizing(main())
