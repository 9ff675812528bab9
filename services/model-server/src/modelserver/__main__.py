"""``python -m modelserver``: run the offline model simulator."""

from __future__ import annotations

import logging
import sys

from httpkit import BindError, bind_socket, parse_server_arguments, serve

from ._app import create_app
from ._catalogue import MODELS
from ._settings import DEFAULT_PORT, PORT_ENV, Settings, SettingsError, port_from_env

log = logging.getLogger("modelserver")


def main(argv: list[str] | None = None) -> int:
    args = parse_server_arguments(
        "python -m modelserver",
        "Offline OpenAI-compatible model server: SIMULATED chat completions (deterministic rules, "
        "no language model) and REAL embeddings (all-MiniLM-L6-v2, run locally). "
        "Environment: MODEL_SERVER_PORT, MODEL_SERVER_FAULTS, MODEL_SERVER_LEDGER_PATH, MODEL_SERVER_API_KEY.",
        argv,
        port_env=PORT_ENV,
        default_port=DEFAULT_PORT,
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
        sock = bind_socket(args.host, port, port_env=PORT_ENV)
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
    serve(app, sock)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
