"""connect's namespace access check: credentials without the namespace fail at start-up, in one
sentence, instead of a worker that starts and then fails every poll."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from temporalio.service import RPCError, RPCStatusCode

from workerkit import ConfigError
from workerkit.connect import check_namespace_access, short_reason


def _client(namespace: str, failure: RPCError | None) -> SimpleNamespace:
    async def describe_namespace(request):
        assert request.namespace == namespace
        if failure is not None:
            raise failure

    return SimpleNamespace(namespace=namespace, workflow_service=SimpleNamespace(describe_namespace=describe_namespace))


async def test_access_granted_passes() -> None:
    await check_namespace_access(_client("agents", None), "127.0.0.1:7233")


@pytest.mark.parametrize("status", [RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED])
async def test_refused_credentials_are_one_sentence_naming_the_namespace(status: RPCStatusCode) -> None:
    refusal = RPCError("Request unauthorized.", status, b"")
    with pytest.raises(ConfigError) as err:
        await check_namespace_access(_client("business", refusal), "127.0.0.1:7233")
    message = str(err.value)
    assert message.startswith("the Temporal server at 127.0.0.1:7233 refused access to namespace business")
    assert "TEMPORAL_API_KEY" in message and "\n" not in message


async def test_missing_namespace_says_how_to_create_it() -> None:
    missing = RPCError("not found", RPCStatusCode.NOT_FOUND, b"")
    with pytest.raises(ConfigError, match="namespace nowhere does not exist at 127.0.0.1:7233; create it"):
        await check_namespace_access(_client("nowhere", missing), "127.0.0.1:7233")


async def test_other_failures_are_not_hidden() -> None:
    with pytest.raises(RPCError):
        await check_namespace_access(
            _client("agents", RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")), "127.0.0.1:7233"
        )


def test_a_connection_closed_at_the_first_call_points_at_tls() -> None:
    core = RuntimeError(
        "Failed client connect: `get_system_info` call error after connection: Status { code: Cancelled, "
        'message: "operation was canceled", source: Some(tonic::transport::Error(Transport, '
        'hyper::Error(Canceled, "connection closed"))) }'
    )
    reason = short_reason(core)
    assert reason.startswith("operation was canceled; the server closed the connection")
    assert "TEMPORAL_TLS_CLIENT_CERT_PATH" in reason and "\n" not in reason


def test_a_refused_connection_keeps_the_os_words() -> None:
    refused = RuntimeError(
        "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
        'ConnectError("tcp connect error", Os { code: 111, kind: ConnectionRefused, '
        'message: "Connection refused" }))'
    )
    assert short_reason(refused) == "Connection refused"
