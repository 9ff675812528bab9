"""Binding: a taken port or an unknown host is one sentence naming what to change."""

from __future__ import annotations

import socket

import pytest

from httpkit import BindError, bind_socket


def test_a_taken_port_names_the_setting_to_change() -> None:
    taken = bind_socket("127.0.0.1", 0, port_env="EXAMPLE_PORT")
    port = taken.getsockname()[1]
    try:
        with pytest.raises(BindError) as err:
            bind_socket("127.0.0.1", port, port_env="EXAMPLE_PORT")
        assert str(err.value) == (
            f"port {port} on 127.0.0.1 is already in use; stop the process using it or choose another "
            "port with --port or EXAMPLE_PORT."
        )
    finally:
        taken.close()


def test_an_unknown_host_is_refused_in_one_sentence() -> None:
    with pytest.raises(BindError, match=r"^cannot resolve host 'no-such-host\.invalid' .*--host\.$"):
        bind_socket("no-such-host.invalid", 0, port_env="EXAMPLE_PORT")


def test_the_socket_listens_before_any_server_runs() -> None:
    # A client that connects between the announcement and uvicorn's start waits in the backlog.
    sock = bind_socket("127.0.0.1", 0, port_env="EXAMPLE_PORT")
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=2):
            pass
    finally:
        sock.close()
