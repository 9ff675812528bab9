"""Generated requests never make the server fail: schemathesis from the served OpenAPI
document (which also checks the document is accurate), and hypothesis bodies aimed at the
codec's error paths."""

from __future__ import annotations

import base64
import json

import pytest
import requests
import schemathesis
from codec_server_testing import RunningServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

# Bounded so the suite stays fast: generating schema-invalid cases costs ~40 ms each.
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_schema_driven_fuzzing(server: RunningServer, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len([op for op in operations if op.method.upper() == "POST"]) == 4
    seen: set[int] = set()
    session = requests.Session()
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # nothing to make invalid in a GET without parameters

        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, session=session, headers=server.auth("root"))
            seen.add(response.status_code)
            assert response.status_code < 500, (case.path, case.body, response.text)
            if mode is GenerationMode.POSITIVE:
                case.validate_response(
                    response,
                    checks=[
                        not_a_server_error,
                        status_code_conformance,
                        content_type_conformance,
                        response_schema_conformance,
                    ],
                )

        run()
    session.close()
    assert 200 in seen


payload_strategy = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.dictionaries(
            st.sampled_from(["encoding", "encryption-key-id", "x"]) | st.text(max_size=8),
            st.sampled_from(
                [b"binary/encrypted", b"binary/zlib", b"json/plain", b"k-2026-11", b"test-key-id", b""]
            ).map(lambda b: base64.b64encode(b).decode())
            | st.text(max_size=12),
            max_size=3,
        ),
        "data": st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode())
        | st.text(max_size=12)
        | st.integers(),
    },
)
bodies = st.one_of(
    st.fixed_dictionaries({"payloads": st.lists(payload_strategy, max_size=4)}),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    ),
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, path=st.sampled_from(["/decode", "/encode", "/agents/decode", "/business/encode"]))
def test_generated_bodies_never_500(server: RunningServer, body: object, path: str) -> None:
    r = server.http.post(
        path,
        content=json.dumps(body),
        headers={
            **server.auth("root"),
            "X-Namespace": path.split("/")[1] if path.count("/") == 2 else "agents",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert r.status_code in (200, 400, 422), r.text
    assert isinstance(r.json(), dict)
