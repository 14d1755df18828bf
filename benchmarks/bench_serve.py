"""Benchmark the prediction service against the bare onnxruntime call.

    python benchmarks/bench_serve.py RUN_DIR [--seconds 5]

RUN_DIR is a run directory made by ``fedlife-sim run`` (its sites' raw CSVs supply
the records; any run works, e.g. ``--dataset heart_disease --rounds 2``). The
script exports the last round to a temporary bundle, starts ``fedlife-coord serve``
on it in a subprocess on a free port, and for requests of 1 and of 256 raw records
posts the same request sequentially from one keep-alive HTTP client for
``--seconds`` (after 20 warm-up requests). Each request's wall time is measured at
the client: JSON encoding, HTTP, record checks, encoding through the feature
contract, the torch model, drift bookkeeping and the JSON answer.

Beside it, the bare ``onnxruntime`` call on the same batch already encoded (the
bundle's ``model.onnx``, one ``InferenceSession.run`` per call). ``ratio`` is the
service's p50 over onnxruntime's p50: what the service adds around the model.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.features import FeatureSpec  # noqa: E402
from server.serving.records import check_records, encode_records  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def records_of(run_dir: Path, count: int) -> list[dict]:
    frames = [pl.read_csv(p, infer_schema=False) for p in sorted(run_dir.glob("sites/*/raw/*.csv"))]
    if not frames:
        sys.exit(f"{run_dir}: no sites/*/raw/*.csv to take records from")
    records = pl.concat(frames, how="diagonal").to_dicts()
    return [records[i % len(records)] for i in range(count)]


def timed(call, seconds: float) -> list[float]:
    for _ in range(20):
        call()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "rps": len(times) / sum(times),
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
        "n": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    coord = str(Path(sys.executable).parent / "fedlife-coord")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "bundle"
        subprocess.run(
            [coord, "models", "export", str(args.run_dir), "--out", str(bundle)],
            env=env,
            check=True,
            capture_output=True,
        )
        spec = FeatureSpec.from_json((bundle / "feature_spec.json").read_text())
        session = ort.InferenceSession(str(bundle / "model.onnx"))
        port = free_port()
        server = subprocess.Popen(
            [coord, "serve", str(bundle), "--port", str(port), "--max-body-bytes", "10000000"],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            client = httpx.Client(timeout=30)
            for _ in range(200):
                try:
                    client.get(url + "/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            results = {}
            for size in (1, 256):
                records = records_of(args.run_dir, size)
                body = json.dumps(records)
                clean, errors = check_records(spec, records)
                assert not errors, errors[:3]
                encoded = encode_records(spec, clean)

                def post(body: str = body) -> None:
                    answer = client.post(url + "/predict", content=body)
                    answer.raise_for_status()

                def bare(encoded: np.ndarray = encoded) -> None:
                    session.run(None, {"encoded": encoded})

                results[size] = {
                    "service": summary(timed(post, args.seconds)),
                    "onnxruntime": summary(timed(bare, args.seconds / 2)),
                }
        finally:
            server.terminate()
            server.wait(timeout=20)

    print(f"{'records':>8} {'what':<12} {'rps':>9} {'p50 ms':>9} {'p99 ms':>9} {'n':>7}")
    figures: dict[str, float | str] = {}
    for size, kinds in results.items():
        for kind, row in kinds.items():
            print(
                f"{size:>8} {kind:<12} {row['rps']:>9.1f} {row['p50_ms']:>9.3f} "
                f"{row['p99_ms']:>9.3f} {row['n']:>7}"
            )
            short = "service" if kind == "service" else "ort"
            figures[f"{short}_{size}_rps"] = round(row["rps"], 1)
            figures[f"{short}_{size}_p50_ms"] = round(row["p50_ms"], 3)
            figures[f"{short}_{size}_p99_ms"] = round(row["p99_ms"], 3)
        ratio = kinds["service"]["p50_ms"] / kinds["onnxruntime"]["p50_ms"]
        figures[f"p50_{size}_ratio"] = round(ratio, 1)
        print(f"{size:>8} service p50 / onnxruntime p50 = {ratio:.1f}")
    figures["cpu_count"] = os.cpu_count() or 0
    figures["machine"] = platform.processor() or platform.machine()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
