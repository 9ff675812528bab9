"""Every field and every limit of the Nexus schemas against the Python contract types.

The JSON Schemas in ``nexus/<service>/schemas`` are the one source of truth. This test fails as
soon as a schema and ``nexus_contracts`` disagree about:

- the fields of an operation's input or output (names, JSON types, nullability, nested types),
- which fields a payload may omit (required-ness and the defaults that fill them in),
- any limit: each ``maxLength``/``maximum``/``maxItems``/``maxProperties``/``minimum``/``enum``
  of an input (and each ``enum`` of an output) must be bound below to one named constant of
  ``nexus_contracts`` with the same value, and every ``MAX_*``/``MIN_*`` constant there must be
  bound to a schema location. ``minLength``/``minItems`` may only say "not empty" (1): the
  handlers check emptiness, not a count, so another value needs a constant and a check first.

The Go worker's ``contract_test.go`` holds its structs and constants to the same schemas, so a
schema change fails both languages until both follow (``nexus/README.md``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nexusrpc
import pytest

from nexus_contracts import business, retrieval
from nexus_contracts.endpoints import CONTRACTS_DIR

MODULES = {"retrieval": retrieval, "business": business}
SERVICES = {"retrieval": retrieval.RetrievalService, "business": business.BusinessService}

# Schema location -> {keyword: name of the constant in the service's nexus_contracts module}.
# A location is a property path inside a schema: ``a.b`` for nested objects, ``a[]`` for array
# items, ``a{}`` for map values and ``a{key}`` for map keys. A bare path applies to every
# schema of the service that has it; ``Title.path`` (the schema's title) to that schema only,
# for a name that means different things in different operations (an order's and a ticket's
# ``status``).
LIMITS: dict[str, dict[str, dict[str, str]]] = {
    "retrieval": {
        "collection": {"maxLength": "MAX_COLLECTION_LENGTH"},
        "query": {"maxLength": "MAX_QUERY_LENGTH"},
        "top_k": {"minimum": "MIN_TOP_K", "maximum": "MAX_TOP_K"},
        "mode": {"enum": "SEARCH_MODES"},
        "query_vector": {"maxItems": "MAX_VECTOR_DIMENSION"},
        "filters": {"maxProperties": "MAX_FILTERS"},
        "filters{key}": {"maxLength": "MAX_KEY_LENGTH"},
        "filters{}": {"maxLength": "MAX_VALUE_LENGTH"},
        "batch_id": {"maxLength": "MAX_BATCH_ID_LENGTH"},
        "documents": {"maxItems": "MAX_INDEX_DOCUMENTS"},
        "documents[].id": {"maxLength": "MAX_DOC_ID_LENGTH"},
        "documents[].version": {"minimum": "MIN_VERSION"},
        "documents[].title": {"maxLength": "MAX_TITLE_LENGTH"},
        "documents[].text": {"maxLength": "MAX_TEXT_LENGTH"},
        "documents[].metadata": {"maxProperties": "MAX_METADATA_ENTRIES"},
        "documents[].metadata{key}": {"maxLength": "MAX_KEY_LENGTH"},
        "documents[].metadata{}": {"maxLength": "MAX_VALUE_LENGTH"},
        "documents[].vector": {"maxItems": "MAX_VECTOR_DIMENSION"},
        "ids": {"maxItems": "MAX_DELETE_IDS"},
        "ids[]": {"maxLength": "MAX_DOC_ID_LENGTH"},
        "collections[].vector_index": {"enum": "VECTOR_INDEX_KINDS"},
    },
    "business": {
        "order_id": {"maxLength": "MAX_ORDER_ID_LENGTH"},
        "customer_id": {"maxLength": "MAX_CUSTOMER_ID_LENGTH"},
        "ticket_id": {"maxLength": "MAX_TICKET_ID_LENGTH"},
        "idempotency_key": {"maxLength": "MAX_IDEMPOTENCY_KEY_LENGTH"},
        "amount_cents": {"minimum": "MIN_AMOUNT_CENTS"},
        "reason": {"maxLength": "MAX_REASON_LENGTH"},
        "subject": {"maxLength": "MAX_SUBJECT_LENGTH"},
        "body": {"maxLength": "MAX_BODY_LENGTH"},
        "priority": {"enum": "TICKET_PRIORITIES"},
        "Order.fulfilment": {"enum": "FULFILMENT_STATES"},
        "Order.status": {"enum": "ORDER_STATUSES"},
        "Ticket.status": {"enum": "TICKET_STATUSES"},
        "RefundResult.status": {"enum": "REFUND_STATUSES"},
    },
}

# Keywords that bound what a caller may send: each needs a bound constant.
BOUND_KEYWORDS = {"maxLength", "maximum", "maxItems", "maxProperties", "minimum", "enum"}
# "Not empty" is the only lower bound on lengths and counts (see the module docstring).
NON_EMPTY_KEYWORDS = {"minLength", "minItems"}
# On outputs these describe what the service produces (non-negative counts, id patterns,
# timestamps); the business tests validate real results against the output schemas.
OUTPUT_ONLY_KEYWORDS = {"minimum", "pattern", "format"}
# Keywords that shape or document a schema; the structural test below reads the shaping ones.
STRUCTURE_KEYWORDS = {
    "$schema", "$id", "title", "description", "type", "properties", "required",
    "additionalProperties", "items", "propertyNames", "default",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Schema:
    service: str
    operation: str
    direction: str
    path: Path
    document: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.service}/{self.path.name}"


def _schemas() -> list[Schema]:
    found = []
    for service_file in sorted(CONTRACTS_DIR.glob("*/service.json")):
        spec = json.loads(service_file.read_text())
        for operation, op in spec["operations"].items():
            for direction in ("input", "output"):
                path = service_file.parent / op[direction]
                found.append(Schema(spec["service"], operation, direction, path, json.loads(path.read_text())))
    return found


SCHEMAS = _schemas()


def _nodes(node: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema with its location (see LIMITS)."""
    yield where, node
    prefix = f"{where}." if where else ""
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, prefix + name)
    for suffix, key in (("[]", "items"), ("{}", "additionalProperties"), ("{key}", "propertyNames")):
        if isinstance(node.get(key), dict):
            yield from _nodes(node[key], where + suffix)


def _binding(schema: Schema, where: str, keyword: str) -> str | None:
    limits = LIMITS[schema.service]
    title = schema.document["title"]
    return limits.get(f"{title}.{where}", {}).get(keyword) or limits.get(where, {}).get(keyword)


def _limit_problems(schema: Schema) -> Iterator[str]:
    module = MODULES[schema.service]
    for where, node in _nodes(schema.document):
        for keyword, value in node.items():
            at = f"{schema.name} {where or '(top)'} {keyword}={value!r}"
            if keyword in STRUCTURE_KEYWORDS or (schema.direction == "output" and keyword in OUTPUT_ONLY_KEYWORDS):
                continue
            if keyword in NON_EMPTY_KEYWORDS:
                if value != 1:
                    yield f"{at}: only 1 (not empty) is checked by the handlers; add a constant and a check"
                continue
            if keyword not in BOUND_KEYWORDS:
                yield f"{at}: this test does not know the keyword; teach it before using it"
                continue
            constant = _binding(schema, where, keyword)
            if constant is None:
                yield f"{at}: no constant of nexus_contracts.{schema.service} is bound to it in LIMITS"
                continue
            bound = getattr(module, constant, None)
            if keyword == "enum":
                # Order does not matter, and null in an enum is the field's nullability, which
                # the structural test checks.
                same = isinstance(bound, tuple) and set(bound) == {v for v in value if v is not None}
            else:
                same = bound == value
            if not same:
                yield f"{at}: nexus_contracts.{schema.service}.{constant} is {bound!r}"


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name)
def test_every_limit_is_a_bound_constant(schema: Schema) -> None:
    assert list(_limit_problems(schema)) == []


@pytest.mark.parametrize("service", sorted(MODULES))
def test_every_binding_and_constant_is_used(service: str) -> None:
    """A stale binding, or a MAX_/MIN_ constant no schema states, is a limit with two homes."""
    used = set()
    for schema in (s for s in SCHEMAS if s.service == service):
        for where, node in _nodes(schema.document):
            for keyword in node:
                used |= {(where, keyword), (f"{schema.document['title']}.{where}", keyword)}
    stale = [(where, kw) for where, kws in LIMITS[service].items() for kw in kws if (where, kw) not in used]
    assert stale == [], "LIMITS binds locations no schema has"
    bound = {name for kws in LIMITS[service].values() for name in kws.values()}
    unbound = [name for name in vars(MODULES[service]) if name.startswith(("MAX_", "MIN_")) and name not in bound]
    assert unbound == [], "limits in nexus_contracts that no schema states"


# --- fields, types, required-ness and defaults -------------------------------------------------

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (float,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _split_type(schema: dict[str, Any]) -> tuple[str, bool]:
    declared = schema["type"]
    names = [declared] if isinstance(declared, str) else list(declared)
    nullable = "null" in names
    rest = [n for n in names if n != "null"]
    assert len(rest) == 1, f"type {declared!r}: only T or [T, 'null'] is supported"
    return rest[0], nullable


def _split_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, f"{hint}: only X | None is supported"
        return args[0], True
    return hint, False


def _type_problems(where: str, schema: dict[str, Any], hint: Any) -> Iterator[str]:
    json_type, nullable = _split_type(schema)
    hint, optional = _split_optional(hint)
    if nullable != optional:
        yield f"{where}: schema nullable={nullable}, Python type {hint} optional={optional}"
    if dataclasses.is_dataclass(hint):
        if json_type != "object" or "properties" not in schema:
            yield f"{where}: schema type {json_type!r}, Python dataclass {hint.__name__}"
        else:
            yield from _object_problems(where, schema, hint)
        return
    origin = typing.get_origin(hint) or hint
    if origin not in JSON_TYPES[json_type]:
        yield f"{where}: schema type {json_type!r}, Python type {hint}"
        return
    args = typing.get_args(hint)
    if json_type == "array":
        yield from _type_problems(f"{where}[]", schema["items"], args[0])
    elif json_type == "object":
        values = schema.get("additionalProperties")
        if not isinstance(values, dict) or args[0] is not str:
            yield f"{where}: a dict needs string keys and a schema with additionalProperties"
        else:
            yield from _type_problems(f"{where}{{}}", values, args[1])


def _object_problems(where: str, schema: dict[str, Any], cls: type) -> Iterator[str]:
    if schema.get("additionalProperties") is not False:
        yield f"{where}: object schema must say additionalProperties: false, or renamed fields pass"
    properties: dict[str, Any] = schema["properties"]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if sorted(fields) != sorted(properties):
        yield f"{where}: {cls.__name__} has fields {sorted(fields)}, schema has {sorted(properties)}"
    hints = typing.get_type_hints(cls)
    required = set(schema.get("required", []))
    for name in fields.keys() & properties.keys():
        at = f"{where}.{name}" if where else name
        yield from _type_problems(at, properties[name], hints[name])
        f = fields[name]
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        # A field with a default may still be required (Python always sends it; the default
        # reads results recorded before it existed), but one without must be required, or a
        # payload that omits it cannot be decoded.
        if not has_default and name not in required:
            yield f"{at}: optional in the schema, but {cls.__name__}.{name} has no default"
        if "default" in properties[name]:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if default != properties[name]["default"]:
                yield f"{at}: schema default {properties[name]['default']!r}, Python default {default!r}"


def _contract_type(schema: Schema) -> type:
    definition = nexusrpc.get_service_definition(SERVICES[schema.service])
    assert definition is not None
    op = definition.operation_definitions[schema.operation]
    return op.input_type if schema.direction == "input" else op.output_type  # type: ignore[no-any-return]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name)
def test_python_type_matches_schema(schema: Schema) -> None:
    assert list(_type_problems("", schema.document, _contract_type(schema))) == []


# --- numbers in service.json prose ---------------------------------------------------------------

# Numbers the operation descriptions state that are not limits of their schemas: deadlines,
# internal batch sizes, id formats. Any other number in a description must be a limit of the
# operation's input schema, so that prose restating a limit ("up to 256 documents") fails here
# when the limit changes instead of going stale.
PROSE_FACTS: dict[tuple[str, str], set[int]] = {
    ("retrieval", "search"): {2},  # deadline 2 s
    ("retrieval", "index"): {64, 2},  # indexed in batches of 64; about 2 MiB a request
    ("retrieval", "delete"): {5},  # deadline 5 s
    ("retrieval", "stats"): {0},  # dimension 0 until the first vector
    ("business", "refund"): {16, 0},  # 16 hex digits of the key's hash; amount <= 0
    ("business", "create_ticket"): {1001, 1002},  # ticket numbers
}
# A number standing alone: not part of a name such as bm25 or sha256, nor of a decimal; both
# ends of a range such as 1..100.
_NUMBER = re.compile(r"(?<!\w)(?<!\d\.)\d+(?:,\d{3})*(?!\w)(?!\.\d)")


def _operations() -> list[Any]:
    found = []
    for schema in SCHEMAS:
        if schema.direction != "input":
            continue
        limits = {
            int(value)
            for _, node in _nodes(schema.document)
            for keyword, value in node.items()
            if keyword in BOUND_KEYWORDS | NON_EMPTY_KEYWORDS and isinstance(value, int)
        }
        spec = json.loads((schema.path.parent.parent / "service.json").read_text())
        description = spec["operations"][schema.operation]["description"]
        found.append(pytest.param(schema.service, schema.operation, description, limits, id=schema.name))
    return found


@pytest.mark.parametrize("service,operation,description,limits", _operations())
def test_numbers_in_descriptions_are_limits_or_listed_facts(
    service: str, operation: str, description: str, limits: set[int]
) -> None:
    stated = {int(n.replace(",", "")) for n in _NUMBER.findall(description)}
    allowed = limits | PROSE_FACTS.get((service, operation), set())
    assert sorted(stated - allowed) == [], (
        f"{service}.{operation}'s description states numbers that are no limit of its input schema; "
        "correct the prose, or list a number that is not a limit in PROSE_FACTS"
    )
