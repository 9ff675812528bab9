"""`make bench-codec`'s own bookkeeping (no server, no Go): the floor it reports is a real round
trip of the bytes, and a Python-only run writes a floor ratio beside every compression-off ratio
and names the targets that sit above it."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("codec_bench", REPO / "ops" / "bench" / "codec_bench.py")
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench  # dataclasses look their module up in sys.modules
spec.loader.exec_module(bench)


def test_the_floor_seals_opens_and_rebuilds_the_payload() -> None:
    # decrypt_into checks the tag: a floor that did not open what it sealed would raise here.
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(70_000))
    floor = bench.upb_floor(AESGCM(os.urandom(32)), payload)
    assert floor() == payload
    assert floor() == payload


def test_a_python_run_reports_the_floor_beside_each_target(tmp_path: Path) -> None:
    output = tmp_path / "codec.json"
    assert bench.main(["--skip-go", "--skip-server", "--seconds", "0.001", "-o", str(output)]) == 0
    document = json.loads(output.read_text())
    python = document["results"]["python"]
    for kind in bench.KINDS:
        for size in bench.SIZES:
            assert 0 < python[kind]["off"][size]["floor_ratio"]
            assert "floor_ratio" not in python[kind]["on"][size]
    targets = document["targets"]
    assert (
        set(targets["floor_ratios"])
        == set(targets["ratios"])
        == {f"python/{kind}/{size}" for kind in bench.KINDS for size in bench.TARGET_SIZES}
    )
    assert targets["ratio_targets_above_floor"] == sorted(
        key for key, floor in targets["floor_ratios"].items() if floor < bench.TARGET_RATIO
    )
