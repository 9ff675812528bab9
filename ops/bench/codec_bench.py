"""Codec throughput against raw AES-256-GCM, Python and Go, in one run (`make bench-codec`).

What one operation is, in both languages: encode then decode one payload of random
(incompressible) bytes, with the key ring's default (compression off, SPEC version 2). The
codec's cost over the cipher is protobuf serialization and the copies; the raw baseline is
AES-GCM seal and open of the same bytes with a fresh nonce. Both run in the same process on the
same machine, so the ratio means something even where the absolute numbers do not travel.

MB/s = payload bytes x operations / second / 1e6 (Go's ``b.SetBytes`` definition), and
ratio = codec MB/s / raw MB/s. Results go to ``bench/results/codec.json`` (committed on purpose:
the history of that file is the history of the codec's cost) and a table on the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from rich.console import Console
from rich.table import Table
from temporalio.api.common.v1 import Payload

from payload_codec import EncryptionCodec, KeyRing

REPO_ROOT = Path(__file__).resolve().parents[2]
GO_MODULE_DIR = REPO_ROOT / "codec-server" / "go"
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "codec.json"
SIZES = {"1KiB": 1 << 10, "64KiB": 64 << 10, "1MiB": 1 << 20}
NAMESPACE = "agents"
GO_LINE = re.compile(
    r"^Benchmark(?P<bench>EncodeDecode|RawAESGCM)/(?P<size>\w+?)(?:-\d+)?\s+(?P<n>\d+)\s+"
    r"(?P<ns>[\d.]+) ns/op\s+(?P<mbs>[\d.]+) MB/s"
)


class BenchError(Exception):
    """The benchmark cannot run; the message says what to do."""


@dataclass(frozen=True)
class Measurement:
    bytes: int
    codec_mb_s: float
    raw_mb_s: float
    codec_ns_op: float
    raw_ns_op: float

    @property
    def ratio(self) -> float:
        return self.codec_mb_s / self.raw_mb_s

    def as_dict(self) -> dict[str, float | int]:
        return {
            "bytes": self.bytes,
            "codec_mb_s": round(self.codec_mb_s, 2),
            "raw_mb_s": round(self.raw_mb_s, 2),
            "ratio": round(self.ratio, 4),
            "codec_ns_op": round(self.codec_ns_op, 1),
            "raw_ns_op": round(self.raw_ns_op, 1),
        }


def _time_loop(operation: Callable[[], object], min_seconds: float, min_ops: int = 5) -> float:
    """Nanoseconds per operation, after one warm-up call."""
    operation()
    ops = 0
    start = time.perf_counter()
    while True:
        operation()
        ops += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and ops >= min_ops:
            return elapsed * 1e9 / ops


def _mb_s(size: int, ns_per_op: float) -> float:
    return size / ns_per_op * 1e3  # bytes/ns * 1e9 / 1e6


def bench_python(seconds: float) -> dict[str, Measurement]:
    material = os.urandom(32)
    codec = EncryptionCodec(KeyRing({"bench": material}, {"*": "bench"}), NAMESPACE)
    aead = AESGCM(material)
    out: dict[str, Measurement] = {}
    for name, size in SIZES.items():
        data = os.urandom(size)
        payload = Payload(metadata={"encoding": b"binary/plain"}, data=data)

        # Bound through defaults: each closure measures this size's bytes, not the loop's last.
        def codec_round_trip(payload: Payload = payload, size: int = size) -> None:
            decoded = codec.decode_sync(codec.encode_sync([payload]))
            assert len(decoded[0].data) == size

        def raw_round_trip(data: bytes = data) -> None:
            nonce = os.urandom(12)
            aead.decrypt(nonce, aead.encrypt(nonce, data, None), None)

        codec_ns = _time_loop(codec_round_trip, seconds)
        raw_ns = _time_loop(raw_round_trip, seconds)
        out[name] = Measurement(size, _mb_s(size, codec_ns), _mb_s(size, raw_ns), codec_ns, raw_ns)
    return out


def bench_go(benchtime: str, timeout_s: float) -> dict[str, Measurement]:
    go = shutil.which("go")
    if go is None:
        raise BenchError("the go toolchain is not on PATH; install Go or pass --skip-go")
    argv = [
        go,
        "test",
        "-run",
        "XXX",
        "-bench",
        "EncodeDecode|RawAESGCM",
        "-benchtime",
        benchtime,
        "-count",
        "1",
        "-timeout",
        f"{int(timeout_s)}s",
        "./codec",
    ]
    try:
        done = subprocess.run(argv, cwd=GO_MODULE_DIR, capture_output=True, text=True, timeout=timeout_s + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the Go benchmarks took longer than {timeout_s:.0f}s; lower --go-benchtime") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"`go test -bench` failed in {GO_MODULE_DIR} ({tail[0]}); run `make test-go` to see why")
    raw: dict[tuple[str, str], tuple[float, float]] = {}
    for line in done.stdout.splitlines():
        match = GO_LINE.match(line.strip())
        if match:
            raw[(match["bench"], match["size"])] = (float(match["ns"]), float(match["mbs"]))
    out: dict[str, Measurement] = {}
    for name, size in SIZES.items():
        try:
            codec_ns, codec_mbs = raw[("EncodeDecode", name)]
            raw_ns, raw_mbs = raw[("RawAESGCM", name)]
        except KeyError:
            raise BenchError(
                f"the Go benchmark output has no {name} line for EncodeDecode and RawAESGCM; "
                "check codec-server/go/codec/bench_test.go"
            ) from None
        out[name] = Measurement(size, codec_mbs, raw_mbs, codec_ns, raw_ns)
    return out


def _command_output(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=REPO_ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine_info() -> dict[str, object]:
    cpu_model, aes_ni = None, None
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        cpu_model = found.group(1).strip() if found else None
        flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
        aes_ni = "aes" in flags.group(1).split() if flags else None
    except OSError:
        pass
    from cryptography.hazmat.backends.openssl.backend import backend

    commit = _command_output(["git", "rev-parse", "--short", "HEAD"])
    dirty = _command_output(["git", "status", "--porcelain", "--", "codec-server"])
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "aes_ni": aes_ni,
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(),
        "go": _command_output(["go", "version"]),
        "git_commit": commit + ("+dirty" if dirty else "") if commit else None,
    }


def render(console: Console, results: dict[str, dict[str, Measurement]]) -> None:
    table = Table(title="codec encode+decode vs raw AES-256-GCM seal+open (random payloads)", title_justify="left")
    for column in ("language", "size", "codec MB/s", "raw MB/s", "codec/raw", "codec µs/op"):
        table.add_column(column, justify="left" if column in ("language", "size") else "right")
    for language, by_size in results.items():
        for name, m in by_size.items():
            table.add_row(
                language,
                name,
                f"{m.codec_mb_s:,.1f}",
                f"{m.raw_mb_s:,.1f}",
                f"{m.ratio:.2f}",
                f"{m.codec_ns_op / 1e3:,.1f}",
            )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="Python: seconds per measurement (default 1)")
    parser.add_argument("--go-benchtime", default="1s", help="Go: -benchtime per benchmark (default 1s)")
    parser.add_argument("--skip-go", action="store_true", help="measure Python only")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    started = time.monotonic()
    try:
        results: dict[str, dict[str, Measurement]] = {"python": bench_python(args.seconds)}
        if not args.skip_go:
            results["go"] = bench_go(args.go_benchtime, timeout_s=120)
    except BenchError as err:
        console.print(f"[red]bench-codec:[/red] {err}", soft_wrap=True)
        return 1
    document = {
        "benchmark": "codec",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "definition": (
            "one op = encode + decode of one payload of random bytes (codec) or AES-256-GCM seal + open "
            "of the same bytes with a fresh nonce (raw); MB/s = bytes x ops / s / 1e6; ratio = codec / raw"
        ),
        "machine": machine_info(),
        "results": {lang: {name: m.as_dict() for name, m in by_size.items()} for lang, by_size in results.items()},
        "duration_seconds": round(time.monotonic() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    render(console, results)
    console.print(f"written to {args.output} in {document['duration_seconds']}s", soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
