"""Load test of the scoring API with locust, with and without instrumentation.

    python examples/observabilite/bench.py --users 200 --duration 60

Each run starts ``resilia serve`` in staging (JSON logs at INFO to a file, every trace
exported, RED and model metrics), drives ``POST /predict`` at ``--users`` requests per
second with locust (headless) and reads locust's statistics. The second run sets
``RESILIA_API__INSTRUMENTED=false``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from resilia.config import load_settings
from resilia.model import save_model, train_from_settings
from resilia.runner import ManagedProcess, free_port

HERE = Path(__file__).resolve().parent


def run(label: str, extra_env: dict, args: argparse.Namespace, workdir: Path) -> dict:
    port = free_port()
    env = {
        "RESILIA_ENV": "staging",
        "RESILIA_ARTIFACTS_DIR": str(workdir / "artifacts"),
        "RESILIA_API__PORT": str(port),
        "RESILIA_LOGGING__FILE": str(workdir / label / "api.log"),
        "RESILIA_TRACING__EXPORT_PATH": str(workdir / label / "spans.jsonl"),
        **extra_env,
    }
    bin_dir = Path(sys.executable).parent
    api = ManagedProcess(
        f"api ({label})",
        [bin_dir / "resilia", "serve"],
        env=env,
        log_path=workdir / label / "api.out",
        ready_url=f"http://127.0.0.1:{port}/health/live",
    ).start()
    try:
        cpu_before = psutil.Process(api.process.pid).cpu_times()
        prefix = workdir / label / "locust"
        subprocess.run(
            [
                bin_dir / "locust", "-f", HERE / "locustfile.py", "--headless",
                "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
                "--run-time", f"{args.duration}s", "--host", f"http://127.0.0.1:{port}",
                "--csv", prefix, "--only-summary", "--loglevel", "WARNING",
            ],
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
        cpu_after = psutil.Process(api.process.pid).cpu_times()
    finally:
        api.stop()
    with open(f"{prefix}_stats.csv", newline="") as f:
        total = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    requests = int(total["Request Count"])
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return {
        "run": label,
        "requests": requests,
        "failures": int(total["Failure Count"]),
        "req/s": float(total["Requests/s"]),
        "p50 ms": float(total["50%"]),
        "p99 ms": float(total["99%"]),
        "max ms": float(total["Max Response Time"]),
        "API CPU µs/req": round(cpu / max(requests, 1) * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200, help="users = requests per second")
    parser.add_argument("--spawn-rate", type=int, default=50)
    parser.add_argument("--duration", type=int, default=60, help="seconds per run")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="resilia-bench-"))
    try:
        settings = load_settings(
            "staging", environ={"RESILIA_ARTIFACTS_DIR": str(workdir / "artifacts")}
        )
        save_model(*train_from_settings(settings), settings.model_path)
        results = [
            run("instrumented", {}, args, workdir),
            run("uninstrumented", {"RESILIA_API__INSTRUMENTED": "false"}, args, workdir),
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    keys = list(results[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for result in results:
        print("| " + " | ".join(str(result[k]) for k in keys) + " |")
    on, off = results
    print(
        f"\nCPU cost of instrumentation: x{on['API CPU µs/req'] / off['API CPU µs/req']:.2f}; "
        f"p99 {on['p99 ms']} ms vs {off['p99 ms']} ms"
    )


if __name__ == "__main__":
    main()
