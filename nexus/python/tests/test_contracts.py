"""The Python types and service definitions against the contract files in ``nexus/``.

For every service: the registered service and operation names are exactly those in its
``service.json``; every example validates against its JSON Schema, decodes into the Python
type with Temporal's default data converter, and encodes back to the same JSON. A field
renamed on either side fails here (the Go side runs the same checks in its own tests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import nexusrpc
import pytest
from temporalio.converter import DataConverter

from nexus_contracts import business, load_endpoints, retrieval
from nexus_contracts.endpoints import CONTRACTS_DIR

SERVICES = {"retrieval": retrieval.RetrievalService, "business": business.BusinessService}


def _service_files() -> list[Path]:
    return sorted(CONTRACTS_DIR.glob("*/service.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _operation_types(service_cls: type, operation: str) -> tuple[type, type]:
    definition = nexusrpc.get_service_definition(service_cls)
    assert definition is not None
    op = definition.operation_definitions[operation]
    return op.input_type, op.output_type


def _examples() -> list[tuple[str, str, str, Path, Path]]:
    cases = []
    for service_file in _service_files():
        spec = _load(service_file)
        for op_name, op in spec["operations"].items():
            for example in op["examples"]:
                for direction in ("input", "output"):
                    cases.append(
                        (
                            spec["service"],
                            op_name,
                            direction,
                            service_file.parent / op[direction],
                            service_file.parent / example[direction],
                        )
                    )
    return cases


def test_every_contract_has_a_python_service() -> None:
    assert sorted(_load(f)["service"] for f in _service_files()) == sorted(SERVICES)


@pytest.mark.parametrize("service_file", _service_files(), ids=lambda p: p.parent.name)
def test_service_and_operation_names_match(service_file: Path) -> None:
    spec = _load(service_file)
    definition = nexusrpc.get_service_definition(SERVICES[spec["service"]])
    assert definition is not None
    assert definition.name == spec["service"]
    assert sorted(op.name for op in definition.operation_definitions.values()) == sorted(spec["operations"])


@pytest.mark.parametrize(
    "service,operation,direction,schema_path,example_path",
    _examples(),
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_example_round_trips(
    service: str, operation: str, direction: str, schema_path: Path, example_path: Path
) -> None:
    example = _load(example_path)
    jsonschema.validate(example, _load(schema_path))
    input_type, output_type = _operation_types(SERVICES[service], operation)
    python_type = input_type if direction == "input" else output_type

    converter = DataConverter.default.payload_converter
    payload = converter.to_payloads([example])
    value = converter.from_payloads(payload, [python_type])[0]
    assert isinstance(value, python_type)
    again = json.loads(converter.to_payloads([value])[0].data)
    assert again == example


def test_schemas_reject_unknown_fields() -> None:
    """A renamed field must not pass validation silently on the wire either."""
    for _, _, _, schema_path, example_path in _examples():
        example = _load(example_path)
        renamed = {**{k: v for k, v in example.items() if k != next(iter(example))}, "renamed_field": 1}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(renamed, _load(schema_path))


def test_endpoints_name_a_known_service_each() -> None:
    endpoints = load_endpoints()
    assert {e.service for e in endpoints} == set(SERVICES)
    assert len({e.name for e in endpoints}) == len(endpoints)
    for endpoint in endpoints:
        assert endpoint.target_namespace and endpoint.target_task_queue


@pytest.mark.parametrize("module", [retrieval, business], ids=lambda m: m.SERVICE_NAME)
def test_default_endpoint_is_the_services_endpoint(module: Any) -> None:
    """Callers default to this name (AGENT_*_ENDPOINT overrides it): it must route to the service."""
    [endpoint] = [e for e in load_endpoints() if e.service == module.SERVICE_NAME]
    assert module.DEFAULT_ENDPOINT == endpoint.name


def test_bad_endpoint_file_gives_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "endpoints.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the Nexus endpoint list"):
        load_endpoints(broken)
