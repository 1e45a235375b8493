"""The feature store hung, resumed, killed and restarted under bursts of requests.

    python -m resilia_observabilite.faults --runs 10 --burst 300

Starts the feature store and the API as real processes on free loopback ports, then,
for each run, sends a burst of concurrent ``GET /customers/{id}/churn`` in each
phase: store healthy, hung (SIGSTOP), resumed (SIGCONT), killed (SIGKILL),
restarted. A run passes when every request of every burst gets an answer, that
answer is 200 or a 503 carrying ``Retry-After``, no phase is slower than the healthy
one by more than the store's deadline, and right after the restart the API serves
known customers again (the pool is not jammed). Prints one line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from coursekit.runner import ManagedProcess, free_port
from resilia.config import load_settings
from resilia.model import save_model, train_from_settings

PHASES = ("healthy", "hung", "resumed", "killed", "restarted")
AFTER_RESTART = 20
"""Sequential requests that must all succeed once the store is back."""


@dataclass
class Burst:
    phase: str
    statuses: Counter = field(default_factory=Counter)
    slowest_s: float = 0.0

    @property
    def answered(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "no answer")

    def summary(self) -> str:
        counts = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items(), key=str))
        return f"{self.phase} [{counts}] {self.slowest_s:.2f}s"


async def burst(url: str, phase: str, size: int) -> Burst:
    """``size`` concurrent requests for known customers; what came back, how fast."""
    result = Burst(phase)
    limits = httpx.Limits(max_connections=size)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(i: int) -> None:
            start = time.perf_counter()
            try:
                response = await client.get(f"/customers/C{1 + i % 5000:06d}/churn")
            except httpx.HTTPError:
                result.statuses["no answer"] += 1
                return
            status = response.status_code
            if status == 503 and "retry-after" not in response.headers:
                status = "503 without Retry-After"
            result.statuses[status] += 1
            result.slowest_s = max(result.slowest_s, time.perf_counter() - start)

        await asyncio.gather(*(one(i) for i in range(size)))
    return result


def _signal(process: ManagedProcess, sig: signal.Signals) -> None:
    os.killpg(process.process.pid, sig)


class Services:
    """The feature store and the API, started once, the store driven by signals."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.api_port, store_port = free_port(), free_port()
        self.env = {
            "RESILIA_ENV": "dev",
            "RESILIA_LOG_LEVEL": "WARNING",
            "RESILIA_ARTIFACTS_DIR": str(workdir / "artifacts"),
            "RESILIA_API__PORT": str(self.api_port),
            "RESILIA_FEATURE_STORE__URL": f"http://127.0.0.1:{store_port}",
            **(env or {}),
        }
        self.settings = load_settings(environ=self.env)
        if not self.settings.model_path.exists():
            save_model(*train_from_settings(self.settings), self.settings.model_path)
        resilia = str(Path(sys.executable).parent / "resilia")
        self.store = ManagedProcess(
            "feature store",
            [resilia, "feature-store"],
            env=self.env,
            log_path=workdir / "feature-store.out",
            ready_url=f"http://127.0.0.1:{store_port}/health/ready",
            port=store_port,
        )
        self.api = ManagedProcess(
            "api",
            [resilia, "serve"],
            env=self.env,
            log_path=workdir / "api.out",
            ready_url=f"http://127.0.0.1:{self.api_port}/health/ready",
            port=self.api_port,
        )
        self.url = f"http://127.0.0.1:{self.api_port}"

    def __enter__(self) -> Services:
        self.store.start()
        try:
            self.api.start()
        except BaseException:
            self.store.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.store.running:
            _signal(self.store, signal.SIGCONT)
        self.api.stop()
        self.store.stop()


@dataclass
class Run:
    bursts: list[Burst]
    after_restart: Counter
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAILED: " + "; ".join(self.problems)
        parts = " | ".join(b.summary() for b in self.bursts)
        after = dict(self.after_restart)
        return f"{verdict} | {parts} | after restart {after}"


def check(bursts: list[Burst], after_restart: Counter, size: int, deadline_s: float):
    problems = []
    for b in bursts:
        if b.answered != size:
            problems.append(f"{b.phase}: {size - b.answered} requests without answer")
        odd = {s for s in b.statuses if s not in (200, 503)}
        if odd:
            problems.append(f"{b.phase}: unexpected {sorted(map(str, odd))}")
        if b.slowest_s > bursts[0].slowest_s + deadline_s:
            problems.append(f"{b.phase}: slowest answer {b.slowest_s:.1f}s")
    if after_restart != Counter({200: AFTER_RESTART}):
        problems.append(f"after restart: {dict(after_restart)}")
    return problems


async def run_sequence(services: Services, size: int, pause_s: float = 0.5) -> Run:
    """One pass through the five phases, a burst in each."""
    store, bursts = services.store, []
    bursts.append(await burst(services.url, "healthy", size))
    _signal(store, signal.SIGSTOP)
    bursts.append(await burst(services.url, "hung", size))
    _signal(store, signal.SIGCONT)
    await asyncio.sleep(pause_s)
    bursts.append(await burst(services.url, "resumed", size))
    _signal(store, signal.SIGKILL)
    store.process.wait()
    bursts.append(await burst(services.url, "killed", size))
    store.start()
    bursts.append(await burst(services.url, "restarted", size))
    after = Counter()
    async with httpx.AsyncClient(base_url=services.url, timeout=5) as client:
        for i in range(AFTER_RESTART):
            try:
                response = await client.get(f"/customers/C{100 + i:06d}/churn")
                after[response.status_code] += 1
            except httpx.HTTPError:
                after["no answer"] += 1
    # A phase may be slower than the healthy one by the store's deadline, no more.
    deadline_s = services.settings.feature_store.timeout_s + 1
    return Run(bursts, after, check(bursts, after, size, deadline_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burst", type=int, default=300, help="concurrent requests")
    args = parser.parse_args()
    outcomes = []
    with (
        tempfile.TemporaryDirectory(prefix="resilia-faults-") as tmp,
        Services(Path(tmp)) as services,
    ):
        for i in range(1, args.runs + 1):
            run = asyncio.run(run_sequence(services, args.burst))
            outcomes.append(run.ok)
            print(f"run {i:2d}: {run.summary()}", flush=True)
    print(f"{sum(outcomes)}/{len(outcomes)} runs passed")
    sys.exit(0 if all(outcomes) else 1)


if __name__ == "__main__":
    main()
