"""``python -m modelserver``: run the offline model simulator."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from ._app import create_app
from ._catalogue import MODELS
from ._serve import BindError, bind_socket, serve
from ._settings import DEFAULT_HOST, Settings, SettingsError, port_from_env

log = logging.getLogger("modelserver")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelserver",
        description=(
            "Offline OpenAI-compatible model server: SIMULATED chat completions (deterministic rules, "
            "no language model) and REAL embeddings (all-MiniLM-L6-v2, run locally). "
            "Environment: MODEL_SERVER_PORT, MODEL_SERVER_FAULTS, MODEL_SERVER_LEDGER_PATH, MODEL_SERVER_API_KEY."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: $MODEL_SERVER_PORT or 8400; 0 = any free port)"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        port = args.port if args.port is not None else port_from_env()
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"model server: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(settings)
    except OSError as exc:
        # Creating the app opens nothing but the ledger file.
        print(
            f"model server: cannot use the ledger file {settings.ledger_path} ({exc.strerror}); "
            "fix or unset MODEL_SERVER_LEDGER_PATH.",
            file=sys.stderr,
        )
        return 1
    try:
        sock = bind_socket(args.host, port)
    except BindError as exc:
        print(f"model server: {exc}", file=sys.stderr)
        return 1

    bound_host, bound_port = sock.getsockname()[:2]
    log.info(
        "offline model server (chat: SIMULATOR, no language model; embeddings: real all-MiniLM-L6-v2) "
        "listening on http://%s:%d/v1 models=%s ledger=%s faults=%d auth=%s",
        bound_host,
        bound_port,
        ",".join(m.id for m in MODELS),
        settings.ledger_path or "memory",
        len(settings.faults),
        "bearer" if settings.api_key else "off",
    )
    # uvicorn shuts down gracefully, then re-raises the signal it caught; routing SIGTERM through
    # KeyboardInterrupt lets both Ctrl-C and SIGTERM end in a clean exit 0 instead of a traceback.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(app, sock)
    except KeyboardInterrupt:
        pass
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
