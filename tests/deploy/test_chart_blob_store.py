"""The agent's blob store in the chart: a shared volume (the default) or an S3 bucket
(agent.blobStore.type s3: no claim, the settings agent.blobs.settings reads, credentials from a
Secret or the SDK's chain; the paid answers in the bucket too, so no blob volume), and the values
refused with one sentence (issue 18). The rendered settings of every agent pool are given to the
worker's own store and paid-answer selection against a real
S3-compatible server (SeaweedFS, `make s3-server`): a wrong variable name fails here."""

from __future__ import annotations

from pathlib import Path

from support.helm_chart import CHART, SKIP_WITHOUT_HELM, component_of, env_of, helm, pod_spec, render
from support.s3server import ACCESS_KEY, SECRET_KEY, running_s3_server

from agent.blobs.s3 import S3BlobStore
from agent.blobs.settings import blob_store_from_env
from agent.blobs.types import BlobRef
from agent.paid_calls import paid_answers_from
from payload_codec import KEY_SIZE, EncryptionCodec, KeyRing

pytestmark = SKIP_WITHOUT_HELM

S3 = ["-f", str(CHART / "examples" / "blobs-s3.yaml")]
AGENT_POOLS = {"agent-worker", "llm-worker", "embed-worker"}
NETWORK_POLICY = [
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "networkPolicy.temporal.to[0].ipBlock.cidr=10.0.0.0/8",
    "--set",
    "modelServer.enabled=true",
]


def agent_pools(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] == "Deployment" and component_of(d) in AGENT_POOLS]


def test_volume_store_is_one_claim_every_pool_mounts() -> None:
    docs = render()
    [claim] = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    for deployment in agent_pools(docs):
        [blobs] = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "blobs"]
        assert blobs["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        [worker] = pod_spec(deployment)["containers"]
        assert "AGENT_BLOB_STORE" not in env_of(worker)


def test_s3_store_has_no_claim_and_gives_every_pool_the_bucket() -> None:
    docs = render(*S3)
    assert [d for d in docs if d["kind"] == "PersistentVolumeClaim"] == []
    pools = agent_pools(docs)
    assert {component_of(d) for d in pools} == AGENT_POOLS
    for deployment in pools:
        [worker] = pod_spec(deployment)["containers"]
        env = env_of(worker)
        assert {k: env[k].get("value") for k in ("AGENT_BLOB_STORE", "AGENT_BLOB_S3_BUCKET", "AWS_REGION")} == {
            "AGENT_BLOB_STORE": "s3",
            "AGENT_BLOB_S3_BUCKET": "durable-agents-blobs",
            "AWS_REGION": "eu-west-1",
        }
        assert env["AGENT_BLOB_S3_PREFIX"]["value"] == "production/"
        assert "AWS_ENDPOINT_URL_S3" not in env  # AWS S3 itself
        # The access key by reference only: no secret in the manifest.
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "agent-blobs-s3", "key": name}
        # The bucket keeps the paid answers too: no blob volume, nothing for AGENT_BLOB_DIR.
        assert [v for v in pod_spec(deployment)["volumes"] if v["name"] == "blobs"] == []
        assert [m for m in worker["volumeMounts"] if m["name"] == "blobs"] == []
        assert "AGENT_BLOB_DIR" not in env


def test_s3_store_without_a_secret_uses_the_sdk_chain_and_an_endpoint_for_other_services() -> None:
    docs = render(
        *S3,
        "--set",
        "agent.blobStore.s3.credentials.existingSecret=",
        "--set",
        "agent.blobStore.s3.endpoint=http://seaweedfs-s3.storage:8333",
        "--set",
        "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/blobs",
    )
    for deployment in agent_pools(docs):
        env = env_of(pod_spec(deployment)["containers"][0])
        assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
        assert env["AWS_ENDPOINT_URL_S3"]["value"] == "http://seaweedfs-s3.storage:8333"
    [account] = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/blobs"}


def test_network_policy_lets_the_agent_pools_reach_the_bucket() -> None:
    docs = render(*S3, *NETWORK_POLICY, "--set", "networkPolicy.blobStore.to[0].ipBlock.cidr=52.218.0.0/17")
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("np-blob-store")]
    [selector] = policy["spec"]["podSelector"]["matchExpressions"]
    assert set(selector["values"]) == AGENT_POOLS
    assert policy["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "52.218.0.0/17"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    ]


def refused(*args: str) -> str:
    result = helm("template", "agents", str(CHART), *args)
    assert result.returncode != 0, f"helm template {' '.join(args)} succeeded but must fail"
    return result.stderr


def test_values_that_cannot_work_are_refused_in_one_sentence() -> None:
    assert "agent.blobStore.type is s3 but agent.blobStore.s3.bucket is empty" in refused(
        "--set", "agent.blobStore.type=s3"
    )
    assert "needs networkPolicy.blobStore.to" in refused(*S3, *NETWORK_POLICY)
    assert "agent/blobStore/type" in refused("--set", "agent.blobStore.type=gcs")
    assert "agent/blobStore/s3/bucket" in refused(*S3, "--set", "agent.blobStore.s3.bucket=Not_A_Bucket")


async def test_every_pools_rendered_settings_reach_a_real_bucket(tmp_path: Path) -> None:
    with running_s3_server(tmp_path) as server:
        server.create_bucket("chart-blobs")
        docs = render(
            *S3,
            "--set",
            f"agent.blobStore.s3.endpoint={server.endpoint}",
            "--set",
            "agent.blobStore.s3.bucket=chart-blobs",
        )
        # The Secret the chart README tells an operator to create.
        secrets = {"agent-blobs-s3": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}}
        ring = KeyRing({"k1": bytes(range(KEY_SIZE))}, {"agents": "k1"})
        written: dict[BlobRef, bytes] = {}
        answered: list[str] = []
        for deployment in agent_pools(docs):
            env = {}
            for name, entry in env_of(pod_spec(deployment)["containers"][0]).items():
                if "value" in entry:
                    env[name] = entry["value"]
                elif (ref := entry.get("valueFrom", {}).get("secretKeyRef")) and ref["name"] in secrets:
                    env[name] = secrets[ref["name"]][ref["key"]]  # (the model provider's key: not needed here)
            store = blob_store_from_env(EncryptionCodec(ring, "agents"), env)
            assert isinstance(store, S3BlobStore)
            await store.check()  # what the worker does before it starts
            text = f"written by {component_of(deployment)}".encode()
            written[await store.put(text)] = text
            answers = paid_answers_from(store)  # where the worker keeps its paid answers
            await answers.put(component_of(deployment), "fp", text.decode())
            answered.append(component_of(deployment))
            # Each pool reads what the pools before it wrote: blobs and paid answers.
            assert {ref: await store.get(ref) for ref in written} == written
            assert [await answers.get(pool, "fp", str) for pool in answered] == [f"written by {p}" for p in answered]
        listing = server.client().list_objects_v2(Bucket="chart-blobs")
        keys = sorted(o["Key"] for o in listing.get("Contents", []))
        blobs = sorted(f"production/{r.digest[:2]}/{r.digest}.enc" for r in written)
        assert len(written) == 3 and [k for k in keys if not k.startswith("production/paid-answers/")] == blobs
        assert len(keys) == 6
