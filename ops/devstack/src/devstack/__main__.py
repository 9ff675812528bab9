"""``python -m devstack up|down|status|logs``: the dev stack behind ``make up`` and friends."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from devstack import mcp
from devstack.config import BLOB_KINDS, DB_KINDS, REPO_ROOT, STACK_KINDS, StackConfig
from devstack.processes import StackError
from devstack.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    parser.add_argument(
        "--stack",
        choices=STACK_KINDS,
        help="dev (the embedded dev server) or cluster (self-hosted nodes, mTLS, JWT); "
        "default: dev for up, else the stack `up` started last",
    )
    parser.add_argument(
        "--db",
        choices=DB_KINDS,
        help="where the workers keep their records: embedded (SQLite, the retrieval worker's own index) or "
        "postgres (databases in PostgreSQL, two replicas each); default: what this data directory used last",
    )
    parser.add_argument(
        "--blobs",
        choices=BLOB_KINDS,
        help="where the agent worker keeps its blobs: local (a directory) or s3 (a bucket of the stack's own "
        "SeaweedFS, built by make s3-server); default: what this data directory used last",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start everything that is not running; wait until ready")
    commands.add_parser("down", help="stop what the stack started")
    commands.add_parser("restart-workers", help="restart the workers and the codec server (they load keys at start-up)")
    commands.add_parser("status", help="show each process, its pid and address")
    logs = commands.add_parser("logs", help="show (or follow) the processes' log files")
    logs.add_argument("name", nargs="?", help="one process (default: all)")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=40)
    commands.add_parser("env", help="print the export lines a shell needs to use the stack (eval them)")
    commands.add_parser("mcp-config", help="print an MCP client configuration (JSON) for the stack's MCP server")
    run = commands.add_parser("run", help="run a command with the stack's client settings")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- command [args...]")
    args = parser.parse_args(argv)

    try:
        kind = args.stack or ("dev" if args.command == "up" else _last_kind())
        stack = Stack(StackConfig.from_env(kind, args.db, args.blobs))
        if args.command == "up":
            stack.config.remember_kinds()
            _LAST_KIND.parent.mkdir(parents=True, exist_ok=True)
            _LAST_KIND.write_text(kind + "\n")
            stack.up()
            tokens = stack.codec_tokens
            print(
                f"codec endpoint     {stack.config.codec_server_url} "
                f"(tokens: {tokens.developer_token_file}, {tokens.auditor_token_file})"
            )
            token_dir = mcp.tokens(stack.config).tokens_file.parent
            print(f"MCP server         {mcp.url(stack.config)} (tokens: {token_dir}/mcp-token-*; make mcp-config)")
            print('ready. Use the CLI with: eval "$(.venv/bin/python -m devstack env)"; .venv/bin/agent check')
        elif args.command == "env":
            secret_files = stack.secret_files()
            for name, value in stack.client_env().items():
                # A secret is read from its file by the shell, so it never lands on a terminal.
                if name in secret_files:
                    print(f'export {name}="$(cat {shlex.quote(str(secret_files[name]))})"')
                else:
                    print(f"export {name}={shlex.quote(value)}")
        elif args.command == "mcp-config":
            # Secrets (a cluster's API key) stay in their files, never in a printed configuration.
            secret = stack.secret_files()
            env = {
                k: v for k, v in stack.client_env().items() if k.startswith(("TEMPORAL_", "CODEC_")) and k not in secret
            }
            print(json.dumps(mcp.client_config(stack.config, env), indent=2))
        elif args.command == "run":
            argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not argv:
                raise StackError("run needs a command: python -m devstack run -- COMMAND [ARGS...]")
            os.execvpe(argv[0], argv, {**os.environ, **stack.client_env()})
        elif args.command == "down":
            stack.down()
        elif args.command == "restart-workers":
            stack.restart_workers()
        elif args.command == "status":
            down = 0
            for status in stack.status():
                state = f"running (pid {status.running.pid})" if status.running else "stopped"
                down += status.running is None
                print(f"{status.name:17} {state:22} {status.url}")
            if ring := stack.ring_summary():
                print(f"{'membership ring':17} {ring}")
            return 0 if down == 0 else 3
        elif args.command == "logs":
            names = [args.name] if args.name else stack.process_names()
            unknown = set(names) - set(stack.process_names())
            if unknown:
                raise StackError(
                    f"no process named {', '.join(sorted(unknown))}; known: {', '.join(stack.process_names())}"
                )
            paths = [str(stack.processes.log_path(n)) for n in names if stack.processes.log_path(n).exists()]
            if not paths:
                raise StackError(f"no log files yet in {stack.config.log_dir}; run `make up` first")
            tail = ["tail", "-n", str(args.lines), *(["-F"] if args.follow else []), *paths]
            os.execvp("tail", tail)
    except (StackError, ValueError) as err:
        print(f"devstack: {err}", file=sys.stderr)
        return 1
    return 0


# Which stack `down`, `status`, `logs`, `env` and `run` mean when not told: the one last brought up.
_LAST_KIND = Path(os.environ.get("DEVSTACK_DATA_DIR", REPO_ROOT / ".data")) / "devstack-last-stack"


def _last_kind() -> str:
    try:
        kind = _LAST_KIND.read_text().strip()
    except OSError:
        return "dev"
    return kind if kind in STACK_KINDS else "dev"


if __name__ == "__main__":
    sys.exit(main())
