"""The chart's self-hosted example is the configuration the dev stack's cluster mode proves
(`make up STACK=cluster`, tests/integration/test_cluster.py): one frontend address, mTLS with a
private CA, and one JWT per namespace, so each worker can reach its own namespace only; the
setup Job alone holds the admin token."""

from __future__ import annotations

from support.helm_chart import CHART, SKIP_WITHOUT_HELM, containers, env_of, render

pytestmark = SKIP_WITHOUT_HELM

TOKEN_OF = {
    "agents": "temporal-token-agents",
    "retrieval": "temporal-token-retrieval",
    "business": "temporal-token-business",
}


def test_each_worker_holds_its_own_namespaces_token_over_mtls() -> None:
    docs = render("-f", str(CHART / "examples" / "self-hosted.yaml"))
    seen = {}
    for where, container, _ in containers(docs):
        env = env_of(container)
        if "TEMPORAL_NAMESPACE" not in env:
            continue
        namespace = env["TEMPORAL_NAMESPACE"]["value"]
        key = env["TEMPORAL_API_KEY"]["valueFrom"]["secretKeyRef"]
        if "/setup" in where:
            # Namespaces, endpoints and the search attribute are cluster-level: the admin token.
            assert key == {"name": "temporal-token-admin", "key": "api-key"}, where
            continue
        assert key == {"name": TOKEN_OF[namespace], "key": "api-key"}, where
        assert env["TEMPORAL_TLS"]["value"] == "true"
        assert env["TEMPORAL_TLS_CLIENT_CERT_PATH"]["value"] == "/etc/temporal/tls/tls.crt"
        assert env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"]["value"] == "/etc/temporal/ca/ca.crt"
        assert env["TEMPORAL_TLS_SERVER_NAME"]["value"] == "temporal-frontend.temporal.svc.cluster.local"
        assert env["TEMPORAL_ADDRESS"]["value"] == "temporal-frontend.temporal.svc.cluster.local:7233"
        seen[where] = namespace
    assert set(seen.values()) == set(TOKEN_OF), seen


def test_a_namespace_without_its_own_token_falls_back_to_the_chart_wide_key() -> None:
    docs = render(
        "--set",
        "temporal.apiKey.existingSecret=shared-token",
        "--set",
        "temporal.namespaces.business.apiKey.existingSecret=business-token",
    )
    keys = {}
    for where, container, _ in containers(docs):
        env = env_of(container)
        if "TEMPORAL_API_KEY" in env:
            keys[env["TEMPORAL_NAMESPACE"]["value"]] = env["TEMPORAL_API_KEY"]["valueFrom"]["secretKeyRef"]["name"]
            assert env["TEMPORAL_TLS"]["value"] == "true", where  # a token never goes in plain text
    assert keys == {"agents": "shared-token", "retrieval": "shared-token", "business": "business-token"}
