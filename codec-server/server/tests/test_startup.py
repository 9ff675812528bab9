"""Configuration errors are one clear sentence and exit 1; settings defaults are what the docs say."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from codec_server_testing import free_port, server_env, sha256_hex

from codec_server import Settings, SettingsError, StaticTokens
from codec_server._settings import DEFAULT_CORS_ORIGINS, check_bind_host, port_from_env

KEYRING = json.dumps({"keys": {"k1": "A" * 43 + "="}, "active": {"*": "k1"}})


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codec_server", *args],
        env=server_env(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({sha256_hex("t"): {"subject": "a", "namespaces": ["*"], "roles": ["decode"]}}))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(["--port", str(port)], CODEC_KEYRING=KEYRING, CODEC_SERVER_TOKENS_FILE=str(tokens))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "already in use" in lines[0]


def test_missing_keyring_and_missing_auth(tmp_path: Path) -> None:
    result = run(["--port", str(free_port())], CODEC_SERVER_AUTH_DISABLED="1")
    assert result.returncode == 1
    assert "CODEC_KEYRING_FILE" in result.stderr and "CODEC_KEYRING_DIR" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    result = run(["--port", str(free_port())], CODEC_KEYRING=KEYRING)
    assert result.returncode == 1 and "no authentication configured" in result.stderr

    bad_key = json.dumps({"keys": {"k1": "c2hvcnQ="}, "active": {"*": "k1"}})
    result = run(["--port", str(free_port())], CODEC_KEYRING=bad_key, CODEC_SERVER_AUTH_DISABLED="1")
    assert result.returncode == 1 and 'key "k1" in CODEC_KEYRING decodes to 5 bytes' in result.stderr
    assert "c2hvcnQ" not in result.stderr


def test_defaults() -> None:
    settings = Settings.from_env({"CODEC_SERVER_TOKENS_FILE": "/x"})
    assert settings.max_body_bytes == 8 * 1024 * 1024
    assert settings.cors_origins == DEFAULT_CORS_ORIGINS == ("http://localhost:8233", "http://127.0.0.1:8233")
    assert settings.audit_log is None
    assert port_from_env({}) == 8404 and port_from_env({"CODEC_SERVER_PORT": "9000"}) == 9000


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"CODEC_SERVER_JWKS_URL": "https://idp.example/jwks"}, "CODEC_SERVER_JWT_AUDIENCE is required"),
        ({"CODEC_SERVER_TOKENS_FILE": "/x", "CODEC_SERVER_CORS_ORIGINS": "*"}, "no *"),
        ({"CODEC_SERVER_TOKENS_FILE": "/x", "CODEC_SERVER_CORS_ORIGINS": "http://ok:1/path"}, "no path"),
        ({"CODEC_SERVER_TOKENS_FILE": "/x", "CODEC_SERVER_MAX_BODY_BYTES": "lots"}, "whole number"),
        ({"CODEC_SERVER_PORT": "70000", "CODEC_SERVER_TOKENS_FILE": "/x"}, "between 0 and 65535"),
        (
            {
                "CODEC_SERVER_JWKS_URL": "https://i/j",
                "CODEC_SERVER_JWT_AUDIENCE": "a",
                "CODEC_SERVER_JWT_ALGORITHMS": "HS256",
            },
            "HS256",
        ),
        ({"CODEC_SERVER_AUTH_DISABLED": "1", "CODEC_SERVER_TOKENS_FILE": "/x"}, "choose one"),
    ],
)
def test_bad_settings(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment.replace("*", r"\*")):
        Settings.from_env(env)
        port_from_env(env)


def test_auth_disabled_only_on_loopback() -> None:
    settings = Settings.from_env({"CODEC_SERVER_AUTH_DISABLED": "1"})
    check_bind_host(settings, "127.0.0.1")
    check_bind_host(settings, "::1")
    with pytest.raises(SettingsError, match="loopback"):
        check_bind_host(settings, "0.0.0.0")


@pytest.mark.parametrize(
    "document, fragment",
    [
        (
            {"raw-token-pasted-here": {"subject": "a", "namespaces": ["x"], "roles": ["decode"]}},
            "never the token itself",
        ),
        ({"a" * 64: {"subject": "a", "namespaces": ["x"], "roles": ["admin"]}}, '"decode" and/or "encode"'),
        ({"a" * 64: {"subject": "", "namespaces": ["x"], "roles": ["decode"]}}, "subject"),
        ({"a" * 64: {"subject": "a", "namespaces": [], "roles": ["decode"]}}, "namespaces"),
        ({}, "non-empty object"),
    ],
)
def test_bad_tokens_file(tmp_path: Path, document: object, fragment: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(document))
    with pytest.raises(SettingsError, match=fragment) as info:
        StaticTokens.from_file(path)
    assert "raw-token-pasted-here" not in str(info.value)


async def test_disabled_auth_is_anonymous_with_full_rights() -> None:
    from codec_server._auth import Authenticator, authorize

    principal = await Authenticator(None, None, disabled=True).authenticate(None)
    assert (principal.subject, principal.method) == ("anonymous", "none")
    authorize(principal, "agents", "encode")


def test_anonymous_role_is_decode_only_and_loopback_only() -> None:
    settings = Settings.from_env({"CODEC_SERVER_TOKENS_FILE": "/x", "CODEC_SERVER_ANONYMOUS_ROLE": "decode"})
    check_bind_host(settings, "127.0.0.1")
    with pytest.raises(SettingsError, match="loopback"):
        check_bind_host(settings, "0.0.0.0")
    with pytest.raises(SettingsError, match="anonymous callers never encode"):
        Settings.from_env({"CODEC_SERVER_TOKENS_FILE": "/x", "CODEC_SERVER_ANONYMOUS_ROLE": "encode"})


async def test_anonymous_callers_decode_but_tokens_still_identify() -> None:
    from codec_server._auth import Authenticator, AuthError, StaticTokens, authorize

    auth = Authenticator(StaticTokens({}), None, anonymous_role="decode")
    principal = await auth.authenticate(None)
    assert (principal.subject, principal.method) == ("anonymous", "none")
    authorize(principal, "agents", "decode")
    with pytest.raises(AuthError) as denied:
        authorize(principal, "agents", "encode")
    assert denied.value.status == 403
    with pytest.raises(AuthError) as bad_token:
        await auth.authenticate("Bearer not-a-known-token")
    assert bad_token.value.status == 401
