"""Load test of the scoring API with locust, with and without instrumentation.

    python examples/observabilite/bench.py --rate 200 --users 20 --duration 60

Each run starts ``resilia serve`` in staging (JSON logs at INFO to a file, every trace
exported, RED and model metrics), drives ``POST /predict`` at ``--rate`` requests per
second with ``--users`` locust users (headless) and reads locust's statistics. The
second run sets ``RESILIA_API__INSTRUMENTED=false``. Prints a Markdown table.
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

from coursekit.runner import ManagedProcess, free_port
from resilia.config import load_settings
from resilia.model import save_model, train_from_settings

HERE = Path(__file__).resolve().parent


def load(url: str, label: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Run locust against ``url`` and return its aggregated statistics."""
    prefix = workdir / label / "locust"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            Path(sys.executable).parent / "locust", "-f", HERE / "locustfile.py", "--headless",
            "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
            "--run-time", f"{args.duration}s", "--host", url,
            "--csv", prefix, "--only-summary", "--loglevel", "WARNING",
        ],
        check=True,
        env={**os.environ, "USER_RPS": str(args.rate / args.users)},
    )  # fmt: skip
    with open(f"{prefix}_stats.csv", newline="") as f:
        return next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")


def run(label: str, extra_env: dict, args: argparse.Namespace, workdir: Path) -> dict:
    port = free_port()
    env = {
        "RESILIA_ENV": "staging",
        "RESILIA_ARTIFACTS_DIR": str(workdir / "artifacts"),
        "RESILIA_API__PORT": str(port),
        **extra_env,
    }
    if not args.plain:
        env["RESILIA_LOGGING__FILE"] = str(workdir / label / "api.log")
        env["RESILIA_TRACING__EXPORT_PATH"] = str(workdir / label / "spans.jsonl")
    api = ManagedProcess(
        f"api ({label})",
        [Path(sys.executable).parent / "resilia", "serve"],
        env=env,
        log_path=workdir / label / "api.out",
        ready_url=f"http://127.0.0.1:{port}/health/live",
    ).start()
    try:
        cpu_before = psutil.Process(api.process.pid).cpu_times()
        total = load(f"http://127.0.0.1:{port}", label, args, workdir)
        cpu_after = psutil.Process(api.process.pid).cpu_times()
    finally:
        api.stop()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return summary(label, total, cpu)


def summary(label: str, total: dict, cpu: float | None) -> dict:
    requests = int(total["Request Count"])
    return {
        "run": label,
        "requests": requests,
        "failures": int(total["Failure Count"]),
        "req/s": float(total["Requests/s"]),
        "p50 ms": float(total["50%"]),
        "p99 ms": float(total["99%"]),
        "max ms": float(total["Max Response Time"]),
        "API CPU µs/req": round(cpu / max(requests, 1) * 1e6) if cpu is not None else "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second")
    parser.add_argument("--users", type=int, default=20, help="locust users sharing the rate")
    parser.add_argument("--spawn-rate", type=int, default=20)
    parser.add_argument("--duration", type=int, default=60, help="seconds per run")
    parser.add_argument(
        "--plain", action="store_true", help="logs to stderr only, spans not exported"
    )
    parser.add_argument(
        "--url", help="also load an already running service (e.g. a container) at this URL"
    )
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
        if args.url:
            results.append(summary(args.url, load(args.url, "external", args, workdir), None))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    keys = list(results[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for result in results:
        print("| " + " | ".join(str(result[k]) for k in keys) + " |")
    on, off = results[:2]
    print(
        f"\nCPU cost of instrumentation: x{on['API CPU µs/req'] / off['API CPU µs/req']:.2f}; "
        f"p99 {on['p99 ms']} ms vs {off['p99 ms']} ms"
    )


if __name__ == "__main__":
    main()
