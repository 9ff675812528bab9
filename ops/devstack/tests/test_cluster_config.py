"""The cluster mode's configuration and credentials, without starting anything."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path

import jwt
import pytest
from cryptography import x509

from devstack import cluster, frontdoor, pki, webui
from devstack.config import PORTS, StackConfig
from devstack.processes import StackError
from devstack.stack import DEV_DYNAMIC_CONFIG, Stack


@pytest.fixture
def config(tmp_path: Path) -> StackConfig:
    return StackConfig(data_dir=tmp_path, ports=StackConfig.from_env().ports, kind="cluster")


def test_every_port_of_every_node_is_distinct_and_clear_of_the_other_defaults(config: StackConfig) -> None:
    node_ports = [p for n in range(cluster.NODES) for p in cluster.node_ports(config, n)]
    assert len(set(node_ports)) == len(node_ports)
    shared = ("temporal_metrics", "cluster_base")
    others = {port for name, port in config.ports.items() if name not in shared}
    assert not others & set(node_ports)
    # Node 1's metrics are the dev server's ("temporal" job); clients look for the front door
    # where they look for the dev server, and it forwards to every node's frontend.
    assert cluster.node_port(config, 0, "metrics") == config.ports["temporal_metrics"]
    backends = cluster.frontdoor_backends(config)
    assert set(backends["grpc"].values()) == {cluster.node_port(config, n, "frontend") for n in range(cluster.NODES)}


def test_the_front_door_passes_tls_through_to_every_live_frontend(config: StackConfig) -> None:
    rendered = frontdoor.render_config(config, cluster.frontdoor_backends(config))
    assert f"bind {config.host}:{config.ports['temporal']}" in rendered
    assert "mode tcp" in rendered and "ssl" not in rendered  # TLS ends at the Temporal frontend
    for node in range(cluster.NODES):
        port = cluster.node_port(config, node, "frontend")
        assert f"server {cluster.node_name(node)} {config.host}:{port}" in rendered
    assert "option redispatch" in rendered and "check inter" in rendered
    # The cluster's own idea of its address is the front door's.
    paths = cluster.ClusterPaths.of(config)
    node = cluster.node_config(config, paths, 0, pki.ensure_pki(paths.pki), pki.ensure_token_issuer(paths.auth))
    assert node["clusterMetadata"]["clusterInformation"]["active"]["rpcAddress"] == config.temporal_address


def test_unknown_stack_kind_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="STACK must be one of dev, cluster"):
        StackConfig.from_env("kubernetes")


def test_cluster_keeps_its_own_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVSTACK_DATA_DIR", raising=False)
    assert StackConfig.from_env("dev").data_dir != StackConfig.from_env("cluster").data_dir
    assert set(StackConfig.from_env("cluster").ports) == set(PORTS)


def test_node_config_serves_mtls_and_authorizes_with_the_stacks_jwks(config: StackConfig) -> None:
    paths = cluster.ClusterPaths.of(config)
    keys = pki.ensure_pki(paths.pki)
    issuer = pki.ensure_token_issuer(paths.auth)
    rendered = cluster.node_config(config, paths, 1, keys, issuer)
    tls = rendered["global"]["tls"]
    for side in ("frontend", "internode"):
        assert tls[side]["server"]["requireClientAuth"] is True
        assert tls[side]["server"]["clientCaFiles"] == [str(keys.ca_cert)]
    auth = rendered["global"]["authorization"]
    assert auth["authorizer"] == auth["claimMapper"] == "default"
    assert auth["jwtKeyProvider"]["keySourceURIs"] == [issuer.jwks.as_uri()]
    # With an internal-frontend the server refuses a publicClient section.
    assert "internal-frontend" in rendered["services"] and "publicClient" not in rendered
    assert rendered["services"]["frontend"]["rpc"]["grpcPort"] == cluster.node_port(config, 1, "frontend")


def test_dynamic_config_file_carries_the_dev_servers_values() -> None:
    document = cluster.dynamic_config(DEV_DYNAMIC_CONFIG)
    assert document["matching.wv.VersionDrainageStatusRefreshInterval"] == [{"value": "2s", "constraints": {}}]


def test_certificates_are_short_lived_private_and_chain_to_the_ca(tmp_path: Path) -> None:
    keys = pki.ensure_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(keys.ca_cert.read_bytes())
    for cert_path, key_path in ((keys.node_cert, keys.node_key), (keys.client_cert, keys.client_key)):
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc <= pki.LEAF_LIFETIME + dt.timedelta(minutes=2)
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    # Kept while fresh: a second `make up` does not re-issue them.
    before = keys.node_cert.read_bytes()
    pki.ensure_pki(tmp_path)
    assert keys.node_cert.read_bytes() == before


def test_tokens_verify_against_the_jwks_and_carry_only_their_permissions(tmp_path: Path) -> None:
    issuer = pki.ensure_token_issuer(tmp_path)
    token = issuer.token("agent-worker", cluster.TOKEN_PERMISSIONS["agent-worker"])
    key = jwt.PyJWK(json.loads(issuer.jwks.read_text())["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"])
    assert claims["permissions"] == ["agents:write"] and claims["sub"] == "agent-worker"
    assert stat.S_IMODE(issuer.token_file("agent-worker").stat().st_mode) == 0o600
    # Other permissions for the same name: a new token, not the old one.
    assert issuer.token("agent-worker", ["business:write"]) != token


def test_each_worker_gets_only_its_own_namespace() -> None:
    workers = {"agent-worker": "agents", "retrieval-worker": "retrieval", "business-worker": "business"}
    for worker, namespace in workers.items():
        assert cluster.TOKEN_PERMISSIONS[worker] == [f"{namespace}:write"]


def test_env_names_the_token_file_and_never_prints_the_token(
    config: StackConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devstack import __main__ as cli

    monkeypatch.setenv("DEVSTACK_DATA_DIR", str(config.data_dir))
    assert cli.main(["--stack", "cluster", "env"]) == 0
    printed = capsys.readouterr().out
    token = Stack(StackConfig.from_env("cluster")).client_env()["TEMPORAL_API_KEY"]
    assert token not in printed
    assert 'export TEMPORAL_API_KEY="$(cat ' in printed and "TEMPORAL_TLS_CLIENT_CERT_PATH" in printed


def test_a_new_signing_key_revokes_and_reissues_every_token(tmp_path: Path) -> None:
    issuer = pki.ensure_token_issuer(tmp_path)
    old = issuer.token("operator", cluster.TOKEN_PERMISSIONS["operator"])
    old_jwks = issuer.jwks.read_text()
    issuer.signing_key.unlink()
    issuer = pki.ensure_token_issuer(tmp_path)
    assert issuer.jwks.read_text() != old_jwks
    assert issuer.token("operator", cluster.TOKEN_PERMISSIONS["operator"]) != old


def test_a_base_port_that_pushes_membership_ports_past_smallint_is_one_clear_error(config: StackConfig) -> None:
    cluster.check_ports(config)
    high = dataclasses.replace(config, ports={**config.ports, "cluster_base": 32740})
    with pytest.raises(StackError, match="membership ports must stay at or below 32767"):
        cluster.check_ports(high)


def test_the_web_ui_reads_through_the_front_door_over_mtls_with_a_read_only_token(config: StackConfig) -> None:
    keys = pki.ensure_pki(cluster.ClusterPaths.of(config).pki)
    rendered = webui.render_config(config, keys)
    assert rendered["temporalGrpcAddress"] == config.temporal_address  # the front door, never one node
    assert rendered["tls"]["certFile"] == str(keys.client_cert) and rendered["tls"]["serverName"] == pki.SERVER_NAME
    assert rendered["codec"]["endpoint"] == config.codec_server_url
    assert rendered["port"] == config.ports["temporal_ui"]
    # What it may do: read, nothing else.
    assert all(p.endswith(":read") for p in cluster.TOKEN_PERMISSIONS[webui.PRINCIPAL])
    assert rendered["disableWriteActions"] is True
