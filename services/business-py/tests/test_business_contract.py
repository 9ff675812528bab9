"""The business handler against the wire contract in ``nexus/business``.

Example round trips and schema checks for every service live in ``nexus/python/tests``;
this module checks what only the handler side can: its registered names and types, and
that real data from its store satisfies the output schemas.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import nexusrpc
import pytest
from temporalio.converter import DataConverter

from business import service_handler
from business.service_handler import BusinessServiceHandler
from business.store import SEED_ORDERS, SqliteStore
from business.worker import DEFAULT_TASK_QUEUE, NAMESPACE
from nexus_contracts import load_endpoints
from nexus_contracts.business import BusinessService

CONTRACT_DIR = Path(__file__).resolve().parents[3] / "nexus" / "business"
SERVICE = json.loads((CONTRACT_DIR / "service.json").read_text())


def test_service_and_operation_names_match_contract() -> None:
    handler = nexusrpc.get_service_definition(BusinessServiceHandler)
    contract = nexusrpc.get_service_definition(BusinessService)
    assert handler is not None and contract is not None
    assert handler.name == contract.name == SERVICE["service"]
    assert set(handler.operation_definitions) == set(SERVICE["operations"])
    for name, op in handler.operation_definitions.items():
        assert op.name == name
        assert op.input_type is contract.operation_definitions[name].input_type
        assert op.output_type is contract.operation_definitions[name].output_type


def test_every_seeded_order_satisfies_output_schema(tmp_path: Path) -> None:
    schema = json.loads((CONTRACT_DIR / SERVICE["operations"]["get_order"]["output"]).read_text())
    store = SqliteStore(tmp_path / "b.sqlite3")
    try:
        for seed in SEED_ORDERS:
            order = store.get_order(seed.order_id)
            assert order is not None
            [payload] = DataConverter.default.payload_converter.to_payloads([order])
            document: dict[str, Any] = json.loads(payload.data)
            jsonschema.validate(document, schema)
            assert document == dataclasses.asdict(order)
    finally:
        store.close()


def test_refund_result_satisfies_output_schema(tmp_path: Path) -> None:
    schema = json.loads((CONTRACT_DIR / SERVICE["operations"]["refund"]["output"]).read_text())
    request = json.loads((CONTRACT_DIR / "examples" / "refund.input.json").read_text())
    store = SqliteStore(tmp_path / "b.sqlite3")
    try:
        request.pop("customer_id")  # the ownership check is the handler's, before the store
        result = store.apply_refund(**request)
    finally:
        store.close()
    [payload] = DataConverter.default.payload_converter.to_payloads([result])
    jsonschema.validate(json.loads(payload.data), schema)


def test_ticket_satisfies_output_schemas(tmp_path: Path) -> None:
    request = json.loads((CONTRACT_DIR / "examples" / "create_ticket.input.json").read_text())
    store = SqliteStore(tmp_path / "b.sqlite3")
    try:
        created = store.create_ticket(**request)
        looked_up = store.get_ticket(created.ticket_id)
    finally:
        store.close()
    assert looked_up == created
    example = json.loads((CONTRACT_DIR / "examples" / "create_ticket.output.json").read_text())
    [payload] = DataConverter.default.payload_converter.to_payloads([created])
    document = json.loads(payload.data)
    # The store assigns the first number and the time; everything else is the example's.
    assert {k: v for k, v in document.items() if k != "created_at"} == {
        k: v for k, v in example.items() if k != "created_at"
    }
    for operation in ("create_ticket", "get_ticket"):
        schema = json.loads((CONTRACT_DIR / SERVICE["operations"][operation]["output"]).read_text())
        jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())


def test_endpoint_targets_worker_defaults() -> None:
    """The ``business`` endpoint routes to where the worker polls when nothing is configured."""
    [endpoint] = [e for e in load_endpoints() if e.service == SERVICE["service"]]
    assert (endpoint.target_namespace, endpoint.target_task_queue) == (NAMESPACE, DEFAULT_TASK_QUEUE)


class _StartedContext:
    """Stands in for the workflow-run context: a request that gets this far was accepted."""

    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        return None


def _boundary_values(name: str, keyword: str, limit: Any) -> list[tuple[Any, bool]]:
    """(value, accepted) on both sides of one limit of a top-level input property."""
    if keyword == "maxLength":
        return [("x" * limit, True), ("x" * (limit + 1), False)]
    if keyword == "minLength":
        return [("x" * limit, True), ("", False)]
    if keyword == "minimum":
        return [(limit, True), (limit - 1, False)]
    if keyword == "maximum":
        return [(limit, True), (limit + 1, False)]
    if keyword == "enum":
        return [*((value, True) for value in limit if value is not None), ("not-" + str(limit[0]), False)]
    if keyword in ("type", "description", "default"):
        return []
    raise AssertionError(f"{name}: {keyword} is not exercised here; teach the test before using it")


@pytest.mark.parametrize("operation", sorted(SERVICE["operations"]))
async def test_handler_enforces_every_input_limit_at_its_boundary(
    operation: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every limit of the input schema: the value at the limit passes the handler's checks (it may
    still be NOT_FOUND or UNAUTHORIZED), one step beyond is BAD_REQUEST. A limit added to the
    schema and to nexus_contracts but not checked by the handler fails here."""
    # Called directly, outside a Nexus task, where the SDK's metric meter is not available.
    for counter in ("record_access_refused", "record_ticket_created"):
        monkeypatch.setattr(service_handler, counter, lambda *_: None)
    spec = SERVICE["operations"][operation]
    schema = json.loads((CONTRACT_DIR / spec["input"]).read_text())
    example = json.loads((CONTRACT_DIR / spec["examples"][0]["input"]).read_text())
    request_type = nexusrpc.get_service_definition(BusinessService).operation_definitions[operation].input_type
    [payload] = DataConverter.default.payload_converter.to_payloads([example])
    base = DataConverter.default.payload_converter.from_payloads([payload], [request_type])[0]
    store = SqliteStore(tmp_path / "b.sqlite3")
    handler_call = getattr(BusinessServiceHandler(store), operation)
    wrong = []
    try:
        for name, prop in schema["properties"].items():
            for keyword, limit in prop.items():
                for value, accepted in _boundary_values(name, keyword, limit):
                    try:
                        await handler_call(_StartedContext(), dataclasses.replace(base, **{name: value}))
                        refused = False
                    except nexusrpc.HandlerError as err:
                        refused = err.type == nexusrpc.HandlerErrorType.BAD_REQUEST
                    if refused == accepted:
                        outcome = "refused" if refused else "accepted"
                        shown = f"{len(value)} characters" if isinstance(value, str) else repr(value)
                        wrong.append(f"{name} of {shown} ({keyword} {limit}): {outcome}")
    finally:
        store.close()
    assert wrong == []
