"""Codec throughput against raw AES-256-GCM, Python and Go, in one run (`make bench-codec`).

What one operation is, in both languages: encode then decode one payload, of random
(incompressible) bytes or of JSON text (compressible records), at 1 KiB, 64 KiB and 1 MiB, with
compression off (the key ring's default, SPEC version 2) and on (threshold 4096). The raw
baseline is AES-GCM seal and open of the same bytes with a fresh nonce, each into a new buffer,
as the codec must return new buffers (Go also reports the seal and open into reused buffers as
``raw_inplace``, to show what those allocations cost). Codec and baseline run in the same
process on the same machine, alternately, several rounds, and the medians are compared, so the
ratio means something even where the absolute numbers do not travel (Go: one size at a time,
codec then baseline, per round). Targets, with compression off: codec/raw >= 0.5 at 64 KiB and
1 MiB in both languages, and one 1 KiB encode+decode in at most 15 us in Go and 30 us in Python
(reported in microseconds for random and JSON payloads). Python, compression off, also runs
``upb_floor`` in the same rounds: only the protobuf copies and GCM passes every Python codec must
make, so raw / floor bounds what any Python codec can reach on the machine.

The codec server: ``POST /decode`` requests per second with 1 and 100 payloads of 1 KiB each,
one client after another on loopback, next to decoding the same batches in-process.

MB/s = payload bytes x operations / second / 1e6 (Go's ``b.SetBytes`` definition), and
ratio = codec MB/s / raw MB/s. Results go to ``bench/results/codec.json`` (committed on purpose:
the history of that file is the history of the codec's cost) and a table on the terminal.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cryptography
import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from rich import box
from rich.console import Console
from rich.table import Table
from temporalio.api.common.v1 import Payload

from payload_codec import EncryptionCodec, KeyRing
from payload_codec.codec import NONCE_SIZE, TAG_SIZE

REPO_ROOT = Path(__file__).resolve().parents[2]
GO_MODULE_DIR = REPO_ROOT / "codec-server" / "go"
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "codec.json"
SIZES = {"1KiB": 1 << 10, "64KiB": 64 << 10, "1MiB": 1 << 20}
KINDS = ("random", "json")
COMPRESSION = {"off": None, "on": 4096}  # None: the key ring's setting, which is off
TARGET_RATIO = 0.5
TARGET_SIZES = ("64KiB", "1MiB")
# One 1 KiB encode+decode, compression off: the cost every small payload (most of them) pays.
LATENCY_SIZE = "1KiB"
TARGET_LATENCY_US = {"python": 30.0, "go": 15.0}
ROUNDS = 5
NAMESPACE = "agents"
# Benchmark names start with the size (codec-server/go/codec/bench_test.go): EncodeDecode/1MiB/json/off.
GO_LINE = re.compile(
    r"^Benchmark(?P<bench>EncodeDecode|RawAESGCM)/(?P<case>[\w/]+?)(?:-\d+)?\s+(?P<n>\d+)\s+"
    r"(?P<ns>[\d.]+) ns/op\s+(?P<mbs>[\d.]+) MB/s"
)
WORDS = (
    "refund order customer keyboard shipping policy approved days invoice the a was broken arrived "
    "late support ticket agent"
).split()


class BenchError(Exception):
    """The benchmark cannot run; the message says what to do."""


@dataclass(frozen=True)
class Measurement:
    bytes: int
    codec_ns_op: float
    raw_ns_op: float
    raw_inplace_ns_op: float | None = None
    floor_ns_op: float | None = None  # Python: upb_floor, the most any Python codec can do

    @property
    def codec_mb_s(self) -> float:
        return _mb_s(self.bytes, self.codec_ns_op)

    @property
    def raw_mb_s(self) -> float:
        return _mb_s(self.bytes, self.raw_ns_op)

    @property
    def ratio(self) -> float:
        return self.raw_ns_op / self.codec_ns_op

    @property
    def floor_ratio(self) -> float | None:
        return None if self.floor_ns_op is None else self.raw_ns_op / self.floor_ns_op

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "bytes": self.bytes,
            "codec_mb_s": round(self.codec_mb_s, 2),
            "raw_mb_s": round(self.raw_mb_s, 2),
            "ratio": round(self.ratio, 4),
            "codec_ns_op": round(self.codec_ns_op, 1),
            "raw_ns_op": round(self.raw_ns_op, 1),
        }
        if self.raw_inplace_ns_op is not None:
            out["raw_inplace_mb_s"] = round(_mb_s(self.bytes, self.raw_inplace_ns_op), 2)
        if self.floor_ns_op is not None:
            out["floor_ns_op"] = round(self.floor_ns_op, 1)
            out["floor_ratio"] = round(self.raw_ns_op / self.floor_ns_op, 4)
        return out


# results[language][kind][compression][size]
Results = dict[str, dict[str, dict[str, dict[str, Measurement]]]]


def json_text(size: int) -> bytes:
    """``size`` bytes of JSON-like records from a small vocabulary, the same for every run."""
    rng = random.Random(size)
    parts, length, i = ["["], 1, 0
    while length < size:
        note = " ".join(rng.choice(WORDS) for _ in range(12))
        record = f'{{"id":{i},"customer":"C-{rng.randrange(10000):04d}","amount_cents":{rng.randrange(100000)},'
        record += f'"note":"{note} "}},'
        parts.append(record)
        length += len(record)
        i += 1
    return "".join(parts).encode()[:size]


def sample(kind: str, size: int) -> bytes:
    return os.urandom(size) if kind == "random" else json_text(size)


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


def _alternate(operations: Sequence[Callable[[], object]], seconds: float) -> list[float]:
    """Median ns/op of each, measured in alternating rounds so that a noisy neighbour on a shared
    machine slows all of them rather than one."""
    rounds: list[list[float]] = [[] for _ in operations]
    for _ in range(ROUNDS):
        for operation, measured in zip(operations, rounds, strict=True):
            measured.append(_time_loop(operation, seconds))
    return [statistics.median(measured) for measured in rounds]


def upb_floor(aead: AESGCM, payload: Payload) -> Callable[[], object]:
    """The part of a codec round trip that no Python codec can skip, as one operation.

    The SDK hands a codec upb ``Payload`` messages and takes new ones back, and upb can neither
    lend a message's bytes nor adopt a buffer: reading ``data`` copies it out, and building a
    message copies its bytes in. So any codec reads the payload (copy), seals it, builds the
    encoded message (copy), reads that back (copy), opens it and builds the decoded message
    (copy). This is those four copies and the two GCM passes, each into a buffer made once,
    and nothing else: no metadata, no framing, no checks. raw / floor is therefore the highest
    codec/raw ratio a Python codec can reach on this machine."""
    nonce = os.urandom(NONCE_SIZE)
    sealed = Payload(data=aead.encrypt(nonce, payload.data, None)).SerializeToString()
    plain = payload.SerializeToString()
    seal_into = bytearray(len(payload.data) + TAG_SIZE)
    open_into = bytearray(len(payload.data))

    def floor() -> Payload:
        aead.encrypt_into(os.urandom(NONCE_SIZE), payload.data, None, seal_into)
        aead.decrypt_into(nonce, Payload.FromString(sealed).data, None, open_into)
        return Payload.FromString(plain)

    return floor


def _mb_s(size: int, ns_per_op: float) -> float:
    return size / ns_per_op * 1e3  # bytes/ns * 1e9 / 1e6


def bench_python(seconds: float) -> dict[str, dict[str, dict[str, Measurement]]]:
    material = os.urandom(32)
    ring = KeyRing({"bench": material}, {"*": "bench"})
    aead = AESGCM(material)
    out: dict[str, dict[str, dict[str, Measurement]]] = {}
    for kind in KINDS:
        for compression, threshold in COMPRESSION.items():
            codec = EncryptionCodec(ring, NAMESPACE, compression_threshold=threshold)
            for name, size in SIZES.items():
                data = sample(kind, size)
                payload = Payload(metadata={"encoding": b"binary/plain"}, data=data)
                # Checked once, outside the timing (upb's ByteSize or equality on a 1 MiB message
                # costs more than the round trip itself).
                if codec.decode_sync(codec.encode_sync([payload])) != [payload]:
                    raise BenchError(f"the codec did not round-trip a {name} {kind} payload")

                # Bound through defaults: each closure measures this case, not the loop's last.
                def codec_round_trip(payload: Payload = payload, codec: EncryptionCodec = codec) -> None:
                    codec.decode_sync(codec.encode_sync([payload]))

                def raw_round_trip(data: bytes = data) -> None:
                    nonce = os.urandom(NONCE_SIZE)
                    aead.decrypt(nonce, aead.encrypt(nonce, data, None), None)

                operations = [codec_round_trip, raw_round_trip]
                if compression == "off":
                    operations.append(upb_floor(aead, payload))
                codec_ns, raw_ns, *floor_ns = _alternate(operations, seconds)
                out.setdefault(kind, {}).setdefault(compression, {})[name] = Measurement(
                    size, codec_ns, raw_ns, floor_ns_op=floor_ns[0] if floor_ns else None
                )
    return out


def bench_go(benchtime: str, timeout_s: float) -> dict[str, dict[str, dict[str, Measurement]]]:
    go = shutil.which("go")
    if go is None:
        raise BenchError("the go toolchain is not on PATH; install Go or pass --skip-go")
    deadline = time.monotonic() + timeout_s
    runs: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Built once, run once per round and size: the codec's cases and the baseline of one size
        # back to back, so a neighbour's burst on a shared machine slows both, not one.
        binary = str(Path(tmp) / "codec.test")
        _run_go([go, "test", "-c", "-o", binary, "./codec"], "`go test -c`", deadline)
        for _ in range(ROUNDS):
            for size in SIZES:
                argv = [binary, "-test.run", "XXX", "-test.bench", f"^Benchmark(EncodeDecode|RawAESGCM)$/^{size}$"]
                output = _run_go([*argv, "-test.benchtime", benchtime], "the Go benchmarks", deadline)
                for line in output.splitlines():
                    if match := GO_LINE.match(line.strip()):
                        runs.setdefault((match["bench"], match["case"]), []).append(float(match["ns"]))

    def median(bench: str, case: str) -> float:
        try:
            return statistics.median(runs[(bench, case)])
        except KeyError:
            raise BenchError(
                f"the Go benchmark output has no {bench}/{case} line; check codec-server/go/codec/bench_test.go"
            ) from None

    out: dict[str, dict[str, dict[str, Measurement]]] = {}
    for kind in KINDS:
        for compression in COMPRESSION:
            for name, size in SIZES.items():
                out.setdefault(kind, {}).setdefault(compression, {})[name] = Measurement(
                    size,
                    median("EncodeDecode", f"{name}/{kind}/{compression}"),
                    median("RawAESGCM", f"{name}/fresh"),
                    median("RawAESGCM", f"{name}/inplace"),
                )
    return out


def _run_go(argv: list[str], what: str, deadline: float) -> str:
    left = deadline - time.monotonic()
    try:
        done = subprocess.run(argv, cwd=GO_MODULE_DIR, capture_output=True, text=True, timeout=max(left, 1))
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish in the time allowed; lower --go-benchtime") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"{what} failed in {GO_MODULE_DIR} ({tail[0]}); run `make test-go` to see why")
    return done.stdout


def bench_server(seconds: float) -> dict[str, dict[str, float]]:
    """Requests per second to a real codec server process, next to in-process decoding."""
    material = os.urandom(32)
    document = {"keys": {"bench": base64.b64encode(material).decode()}, "active": {"*": "bench"}}
    codec = EncryptionCodec(KeyRing({"bench": material}, {"*": "bench"}), NAMESPACE)
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEC_")}
        env.update(
            CODEC_KEYRING=json.dumps(document),
            CODEC_SERVER_AUTH_DISABLED="1",  # loopback only; the server refuses it elsewhere
            CODEC_SERVER_AUDIT_LOG=str(Path(tmp) / "audit.jsonl"),
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "codec_server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, server)
            out: dict[str, dict[str, float]] = {}
            with httpx.Client(base_url=url, timeout=30) as http:
                for batch in (1, 100):
                    encrypted = codec.encode_sync(
                        [Payload(metadata={"encoding": b"json/plain"}, data=json_text(1024)) for _ in range(batch)]
                    )
                    body = json.dumps({"payloads": [_payload_json(p) for p in encrypted]}).encode()
                    headers = {"Content-Type": "application/json", "X-Namespace": NAMESPACE}

                    def request(body: bytes = body, headers: dict[str, str] = headers) -> None:
                        response = http.post("/decode", content=body, headers=headers)
                        if response.status_code != 200:
                            raise BenchError(f"the codec server answered {response.status_code}: {response.text[:200]}")

                    def in_process(encrypted: list[Payload] = encrypted) -> None:
                        codec.decode_sync(encrypted)

                    http_ns = statistics.median(_time_loop(request, seconds) for _ in range(ROUNDS))
                    local_ns = statistics.median(_time_loop(in_process, seconds) for _ in range(ROUNDS))
                    out[f"{batch}x1KiB"] = {
                        "payloads": batch,
                        "http_requests_per_s": round(1e9 / http_ns, 1),
                        "http_payloads_per_s": round(batch * 1e9 / http_ns, 1),
                        "in_process_batches_per_s": round(1e9 / local_ns, 1),
                        "in_process_payloads_per_s": round(batch * 1e9 / local_ns, 1),
                    }
            return out
        finally:
            server.terminate()
            server.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError("the codec server exited at start; run `python -m codec_server` to see why")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchError("the codec server did not answer /healthz within 30 s")


def _payload_json(p: Payload) -> dict[str, object]:
    metadata = {k: base64.b64encode(v).decode() for k, v in p.metadata.items()}
    return {"metadata": metadata, "data": base64.b64encode(p.data).decode()}


def targets(results: Results) -> dict[str, object]:
    ratios = {
        f"{lang}/{kind}/{size}": round(by_kind[kind]["off"][size].ratio, 4)
        for lang, by_kind in results.items()
        for kind in KINDS
        for size in TARGET_SIZES
    }
    latency = {
        lang: {
            **{f"{kind}_us": round(by_kind[kind]["off"][LATENCY_SIZE].codec_ns_op / 1e3, 2) for kind in KINDS},
            "target_us": TARGET_LATENCY_US[lang],
        }
        for lang, by_kind in results.items()
    }
    for row in latency.values():
        row["met"] = all(row[f"{kind}_us"] <= row["target_us"] for kind in KINDS)
    ratios_met = all(r >= TARGET_RATIO for r in ratios.values())
    floor_ratios = {
        f"{lang}/{kind}/{size}": round(floor, 4)
        for lang, by_kind in results.items()
        for kind in KINDS
        for size in TARGET_SIZES
        if (floor := by_kind[kind]["off"][size].floor_ratio) is not None
    }
    return {
        "rule": (
            f"compression off: codec/raw >= {TARGET_RATIO} at {' and '.join(TARGET_SIZES)}, both languages; "
            f"one {LATENCY_SIZE} encode+decode <= "
            + " and ".join(f"{us:g} us in {lang.capitalize()}" for lang, us in TARGET_LATENCY_US.items())
        ),
        "ratios": ratios,
        "ratios_met": ratios_met,
        # raw / upb_floor: the most any codec in that language can reach; a target above it
        # cannot be met by codec changes on this machine.
        "floor_ratios": floor_ratios,
        "ratio_targets_above_floor": sorted(key for key, floor in floor_ratios.items() if floor < TARGET_RATIO),
        "one_1KiB_encode_decode": latency,
        "met": ratios_met and all(row["met"] for row in latency.values()),
    }


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


def render(
    console: Console, results: Results, server: dict[str, dict[str, float]] | None, met: dict[str, object]
) -> None:
    # Borderless, MB/s in whole numbers: nine columns fit an 80-column terminal (and `make`
    # output, which has no width).
    table = Table(
        title=(
            "codec encode+decode vs raw AES-256-GCM seal+open "
            "(ratio: codec/raw; floor: the most any Python codec can reach)"
        ),
        title_justify="left",
        box=box.SIMPLE,
        pad_edge=False,
    )
    columns = ("lang.", "payload", "compr.", "size", "codec us", "codec MB/s", "raw MB/s", "ratio", "floor")
    for column in columns:
        left = column in ("lang.", "payload", "compr.", "size")
        table.add_column(column, justify="left" if left else "right")
    for language, by_kind in results.items():
        for kind, by_compression in by_kind.items():
            for compression, by_size in by_compression.items():
                for name, m in by_size.items():
                    table.add_row(
                        language,
                        kind,
                        compression,
                        name,
                        f"{m.codec_ns_op / 1e3:,.1f}",
                        f"{m.codec_mb_s:,.0f}",
                        f"{m.raw_mb_s:,.0f}",
                        f"{m.ratio:.2f}",
                        "" if m.floor_ratio is None else f"{m.floor_ratio:.2f}",
                    )
    console.print(table)
    latency: dict[str, dict[str, float | bool]] = met["one_1KiB_encode_decode"]  # type: ignore[assignment]
    table = Table(title=f"one {LATENCY_SIZE} encode+decode, compression off", title_justify="left")
    for column in ("language", *(f"{kind} us" for kind in KINDS), "target us", "met"):
        table.add_column(column, justify="left" if column in ("language", "met") else "right")
    for language, row in latency.items():
        table.add_row(
            language,
            *(f"{row[f'{kind}_us']:.1f}" for kind in KINDS),
            f"<= {row['target_us']:g}",
            "yes" if row["met"] else "[red]no[/red]",
        )
    console.print(table)
    if server:
        table = Table(
            title="codec server POST /decode (1 KiB JSON payloads) vs in-process decode", title_justify="left"
        )
        for column in ("batch", "HTTP req/s", "HTTP payloads/s", "in-process batches/s", "in-process payloads/s"):
            table.add_column(column, justify="left" if column == "batch" else "right")
        for name, row in server.items():
            table.add_row(
                name,
                f"{row['http_requests_per_s']:,.0f}",
                f"{row['http_payloads_per_s']:,.0f}",
                f"{row['in_process_batches_per_s']:,.0f}",
                f"{row['in_process_payloads_per_s']:,.0f}",
            )
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=0.3, help="Python: seconds per measurement round (default 0.3)"
    )
    parser.add_argument("--go-benchtime", default="300ms", help="Go: -benchtime per benchmark round (default 300ms)")
    parser.add_argument("--skip-go", action="store_true", help="measure Python only")
    parser.add_argument("--skip-server", action="store_true", help="do not measure the codec server")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    started = time.monotonic()
    # The machine may be shared: its load says how far the absolute numbers (less so the
    # ratios, measured alternately) can be trusted.
    load_before = os.getloadavg()
    try:
        results: Results = {"python": bench_python(args.seconds)}
        if not args.skip_go:
            results["go"] = bench_go(args.go_benchtime, timeout_s=600)
        server = None if args.skip_server else bench_server(args.seconds * 3)
    except BenchError as err:
        console.print(f"[red]bench-codec:[/red] {err}", soft_wrap=True)
        return 1
    document = {
        "benchmark": "codec",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "definition": (
            "one op = encode + decode of one payload (codec) or AES-256-GCM seal + open of the same bytes with a "
            "fresh nonce, each into a new buffer (raw); payloads of random bytes or JSON text; compression off (the "
            "key ring default) or on (threshold 4096); medians of alternating rounds; MB/s = bytes x ops / s / 1e6; "
            "ratio = codec / raw; floor_ratio (Python, compression off) = raw / upb_floor, where upb_floor is only "
            "the four protobuf copies and two GCM passes every Python codec must make (the most any can reach); "
            "us/op (targets.one_1KiB_encode_decode) = one encode + decode in microseconds. "
            "server: POST /decode to a real codec server process on loopback, one client, "
            "1 KiB JSON payloads, next to EncryptionCodec.decode_sync of the same batch"
        ),
        "machine": {
            **machine_info(),
            "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "results": {
            lang: {
                kind: {comp: {name: m.as_dict() for name, m in by_size.items()} for comp, by_size in by_comp.items()}
                for kind, by_comp in by_kind.items()
            }
            for lang, by_kind in results.items()
        },
        "server": server,
        "targets": targets(results),
        "duration_seconds": round(time.monotonic() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    render(console, results, server, document["targets"])
    met = document["targets"]
    console.print(f"targets ({met['rule']}): {'met' if met['met'] else '[red]NOT met[/red]'}", soft_wrap=True)
    floors: dict[str, float] = met["floor_ratios"]  # type: ignore[assignment]
    for key in met["ratio_targets_above_floor"]:  # type: ignore[attr-defined]
        console.print(
            f"[yellow]note:[/yellow] {key}: the floor is {floors[key]:.3f}, below the target ratio {TARGET_RATIO} "
            "(see upb_floor): no Python codec can reach the target in this run",
            soft_wrap=True,
        )
    busiest = max(document["machine"]["load_average_1m_before_after"])
    if busiest > (os.cpu_count() or 1):
        console.print(
            f"[yellow]note:[/yellow] the 1-minute load average reached {busiest:g} on {os.cpu_count()} CPUs: "
            "other work shared the machine, so the absolute numbers are low and the ratios noisy",
            soft_wrap=True,
        )
    console.print(f"written to {args.output} in {document['duration_seconds']}s", soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
