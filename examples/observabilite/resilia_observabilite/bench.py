"""Load test of ``POST /predict`` with locust: workers, instrumentation, sampling.

    python -m resilia_observabilite.bench --users 1 8 32 --workers 1 2 --duration 15
    python -m resilia_observabilite.bench --rate 200 --users 20 --workers 1

Each configuration starts ``resilia serve`` in staging (JSON logs at INFO to a file,
spans exported to a file, RED and model metrics) and loads it with locust (headless):

- without ``--rate``, closed loop: each of ``--users`` users sends its next request
  as soon as the previous one is answered, so the throughput is what the service can
  do at that concurrency;
- with ``--rate``, open loop: the users share a fixed arrival rate, as production
  traffic would, and the latencies are those of a service that keeps up.

Configurations: instrumented with every trace kept, instrumented with one trace in
ten, and not instrumented; each with every ``--workers`` count. Prints a Markdown
table, then throughput and p99 ratios against the first configuration.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from coursekit.runner import ManagedProcess, free_port
from resilia.config import load_settings
from resilia.model import save_model, train_from_settings

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CONFIGURATIONS = {
    "all-traces": {},  # staging as it ships: every trace kept
    "sampled": {"RESILIA_TRACING__SAMPLE_RATIO": "0.1"},  # one trace in ten, as prod
    "uninstrumented": {"RESILIA_API__INSTRUMENTED": "false"},
}


def load(
    url: str,
    users: int,
    args: argparse.Namespace,
    prefix: Path,
    user_class: str = "Scorer",
) -> dict:
    """Run locust against ``url`` and return its aggregated statistics.

    ``locust cpu s`` is the CPU time locust itself used: the load generator's cost,
    to tell it from the service's (chapter "Les tests").
    """
    prefix.parent.mkdir(parents=True, exist_ok=True)
    rate = {"USER_RPS": str(args.rate / users)} if args.rate else {}
    locust = Path(sys.executable).parent / "locust"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [
            locust, "-f", LOCUSTFILE, "--headless", "--host", url,
            "--users", str(users), "--spawn-rate", str(min(users, 100)),
            "--run-time", f"{args.duration}s", "--csv", prefix,
            "--only-summary", "--loglevel", "WARNING", user_class,
        ],
        env={**os.environ, **rate},
        capture_output=True,  # locust's own summary: the caller prints its table
        text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"locust failed ({done.returncode}): {done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(f"{prefix}_stats.csv", newline="") as f:
        stats = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**stats, "locust cpu s": used}


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the workers)."""
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


@dataclass
class Service:
    """A running ``resilia serve``: its URL, its process and its working folder."""

    url: str
    process: ManagedProcess
    workdir: Path

    @property
    def pid(self) -> int:
        return self.process.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


@contextmanager
def serve(
    label: str,
    workdir: Path,
    model_dir: Path,
    *,
    workers: int,
    env: dict[str, str] | None = None,
) -> Iterator[Service]:
    """``resilia serve`` in staging, logs and spans to files; stopped on exit.

    ``env`` overrides settings (``RESILIA_...`` variables) of this configuration.
    """
    port = free_port()
    here = workdir / f"{label}-{workers}w-{port}"
    environ = {
        "RESILIA_ENV": "staging",
        "RESILIA_ARTIFACTS_DIR": str(model_dir),
        "RESILIA_API__PORT": str(port),
        "RESILIA_API__WORKERS": str(workers),
        "RESILIA_LOGGING__FILE": str(here / "api.log"),
        "RESILIA_TRACING__EXPORT_PATH": str(here / "spans.jsonl"),
        **(env or {}),
    }
    process = ManagedProcess(
        f"api ({label}, {workers} workers)",
        [Path(sys.executable).parent / "resilia", "serve"],
        env=environ,
        log_path=here / "api.out",
        ready_url=f"http://127.0.0.1:{port}/health/live",
    ).start(timeout=120)  # each worker loads the model, on a busy machine
    try:
        yield Service(f"http://127.0.0.1:{port}", process, here)
    finally:
        process.stop()


def measure(
    svc: Service,
    users: int,
    args: argparse.Namespace,
    name: str,
    user_class: str = "Scorer",
) -> dict:
    """One locust run against ``svc``: throughput, errors, latency percentiles, and
    the CPU time per request of the service and of locust."""
    before = svc.cpu_seconds()
    stats = load(svc.url, users, args, svc.workdir / name, user_class)
    api_cpu = svc.cpu_seconds() - before
    requests = int(stats["Request Count"])
    return {
        "users": users,
        "req/s": float(stats["Requests/s"]),
        "requests": requests,
        "failures": int(stats["Failure Count"]),
        "p50 ms": float(stats["50%"]),
        "p95 ms": float(stats["95%"]),
        "p99 ms": float(stats["99%"]),
        "api cpu µs/req": api_cpu / max(requests, 1) * 1e6,
        "locust cpu µs/req": stats["locust cpu s"] / max(requests, 1) * 1e6,
    }


def run(label: str, workers: int, env: dict, args, workdir: Path) -> list[dict]:
    """Start the API in one configuration and load it at each concurrency level."""
    rows = []
    with serve(label, workdir, workdir / "artifacts", workers=workers, env=env) as svc:
        for users in args.users:
            m = measure(svc, users, args, f"u{users}")
            rows.append(
                {
                    "service": label,
                    "workers": workers,
                    "users": users,
                    "requests": m["requests"],
                    "failures": m["failures"],
                    "req/s": round(m["req/s"]),
                    "p50 ms": m["p50 ms"],
                    "p99 ms": m["p99 ms"],
                    "API CPU µs/req": round(m["api cpu µs/req"]),
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def ratios(rows: list[dict]) -> str:
    """Each row against the first configuration, same users (1 worker, all traces)."""
    reference = {
        r["users"]: r
        for r in rows
        if r["service"] == rows[0]["service"] and r["workers"] == rows[0]["workers"]
    }
    lines = [
        "| service | workers | users | throughput ratio | p99 ratio |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ref = reference[r["users"]]
        throughput = r["req/s"] / max(ref["req/s"], 1)
        p99 = r["p99 ms"] / max(ref["p99 ms"], 0.001)
        lines.append(
            f"| {r['service']} | {r['workers']} | {r['users']} "
            f"| x{throughput:.2f} | x{p99:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=int, default=15, help="seconds per load")
    parser.add_argument("--rate", type=float, help="open loop: requests per second")
    parser.add_argument(
        "--only", nargs="+", choices=list(CONFIGURATIONS), help="some configurations"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="resilia-bench-"))
    rows = []
    try:
        settings = load_settings(
            "staging", environ={"RESILIA_ARTIFACTS_DIR": str(workdir / "artifacts")}
        )
        save_model(*train_from_settings(settings), settings.model_path)
        for label in args.only or CONFIGURATIONS:
            for workers in args.workers:
                rows += run(label, workers, CONFIGURATIONS[label], args, workdir)
                print(table(rows[-len(args.users) :]), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n" + table(rows) + "\n\n" + ratios(rows))


if __name__ == "__main__":
    main()
