"""Load, stress and endurance tests of the resilia API, with locust.

The notebook ``notebooks/tests-performance`` drives these helpers. The service and the
load are those of the observability chapter's benchmark, ``resilia_observabilite.bench``
(``serve``, and ``measure``: locust headless on its locustfile): this module sets the
production's trace sampling, adds the SLO, the memory of the service's processes, and
reads locust's per-second history.

Everything targets 127.0.0.1 and stops by itself: each locust run is bounded by its
``--run-time``, and the service is a ``ManagedProcess``, stopped on exit.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import psutil
from resilia_observabilite import bench

SLA_RATE = 200
"""Requests per second the SLO is stated at (chapter "L'observabilité")."""
SLO_P99_MS = 50
"""99 % of /predict answered within 50 ms."""
SLO_MAX_ERROR_RATIO = 0.005
"""Availability SLO: 99.5 % of requests without a server error."""


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the workers), in MB."""
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0
    for p in processes:
        with suppress(psutil.NoSuchProcess):  # a worker that just exited
            total += p.memory_info().rss
    return total / 1e6


Service = bench.Service


@contextmanager
def service(
    workdir: Path, model_dir: Path, *, workers: int, instrumented: bool = True
) -> Iterator[Service]:
    """The API in staging with production's workers and trace sampling."""
    with bench.serve(
        "instrumented" if instrumented else "bare",
        workdir,
        model_dir,
        workers=workers,
        env={
            "RESILIA_API__INSTRUMENTED": str(instrumented).lower(),
            **bench.CONFIGURATIONS["sampled"],
        },
    ) as svc:
        yield svc


def run(
    svc: Service,
    *,
    users: int,
    seconds: int,
    rate: float | None = None,
    user_class: str = "Scorer",
    name: str = "run",
) -> dict:
    """One locust run against ``svc``: latencies, throughput, errors, CPU, memory."""
    args = SimpleNamespace(rate=rate, duration=seconds)
    measured = bench.measure(svc, users, args, name, user_class)
    return {
        "users": users,
        "offered req/s": rate,
        **measured,
        "rss MB": rss_mb(svc.pid),
    }


def breaks_slo(row: dict) -> list[str]:
    """How a load level breaks the SLO (empty when it holds)."""
    reasons = []
    if row["failures"] > SLO_MAX_ERROR_RATIO * max(row["requests"], 1):
        reasons.append(f"erreurs {row['failures']}/{row['requests']}")
    if row["p99 ms"] > SLO_P99_MS:
        reasons.append(f"p99 {row['p99 ms']:.0f} ms > {SLO_P99_MS} ms")
    if row["offered req/s"] and row["req/s"] < 0.9 * row["offered req/s"]:
        reasons.append(
            f"débit {row['req/s']:.0f} req/s pour {row['offered req/s']:.0f} demandées"
        )
    return reasons


@dataclass
class MemorySampler:
    """Samples the service's resident memory every ``period`` seconds in a thread."""

    pid: int
    period: float = 1.0
    samples: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - start, rss_mb(self.pid)))
            self._stop.wait(self.period)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def history(svc: Service, name: str) -> list[dict]:
    """Locust's per-second history of a run: time, throughput, current p50 and p95."""
    rows = []
    with open(svc.workdir / f"{name}_stats_history.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] != "Aggregated" or row["50%"] in ("N/A", "0"):
                continue
            rows.append(
                {
                    "t": int(row["Timestamp"]),
                    "req/s": float(row["Requests/s"]),
                    "p50 ms": float(row["50%"]),
                    "p95 ms": float(row["95%"]),
                }
            )
    if rows:
        t0 = rows[0]["t"]
        for row in rows:
            row["t"] -= t0
    return rows


# exercise: tests-performance-drift
def memory_drift(samples: list[tuple[float, float]], warmup: float = 0.2) -> dict:
    """Slope of memory over time (MB per minute) after ``warmup``, with its interval.

    ``samples``: (seconds, MB) pairs. The interval is the slope plus or minus two
    standard errors: when it contains 0, no drift is detectable over this run.
    """
    from scipy import stats

    end = max(t for t, _ in samples) if samples else 0
    steady = [(t, mb) for t, mb in samples if t >= warmup * end]
    if len(steady) < 3:
        raise ValueError(
            f"{len(steady)} memory samples after the warm-up: at least 3 are needed"
        )
    fit = stats.linregress([t / 60 for t, _ in steady], [mb for _, mb in steady])
    return {
        "slope": fit.slope,
        "low": fit.slope - 2 * fit.stderr,
        "high": fit.slope + 2 * fit.stderr,
        "intercept": fit.intercept,
    }


# end of exercise
