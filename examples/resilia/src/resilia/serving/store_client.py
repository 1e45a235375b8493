"""The API's client for the feature store, with behaviour fixed under faults and load.

- At most ``max_concurrency`` calls are in flight toward the store, and the
  connection pool has exactly that many connections: no call ever waits for one.
  A call that finds every slot taken waits ``queue_timeout_s`` at most, then fails
  (``StoreBusy``): a short queue, not one that grows into timeouts.
- Each call has one overall deadline (``timeout_s``), whatever phase it is in.
- The HTTP exchange runs in its own task, shielded: when the deadline passes or the
  client hangs up, the caller gets its answer, but the exchange itself is never
  cancelled halfway. It ends by httpx's own timeouts, which release its connection
  cleanly, and only then frees its slot. (Cancelling requests inside the pool is
  what leaked connections in httpcore, encode/httpcore#1093.)
- Should the pool still time out, it is replaced by a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from dataclasses import dataclass

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from resilia.config import FeatureStoreSettings
from resilia.serving.logs import REQUEST_ID
from resilia.serving.metrics import FeatureStoreMetrics, HttpMetrics
from resilia.serving.middleware import REQUEST_ID_HEADER

logger = logging.getLogger("resilia.api.feature_store")
NO_DELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests leave at once


class StoreError(Exception):
    """The store did not give a usable answer; ``outcome`` says why."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class StoreBusy(StoreError):
    """Every connection to the feature store is taken: shed the request."""

    def __init__(self) -> None:
        super().__init__("busy")


@dataclass(frozen=True)
class StoreAnswer:
    """The feature store's status and JSON body."""

    status_code: int
    body: dict | None


class FeatureStoreClient:
    """The API's client of the feature store: one pool, one deadline, a bound."""

    def __init__(
        self,
        settings: FeatureStoreSettings,
        metrics: FeatureStoreMetrics,
        http_metrics: HttpMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings, self.metrics, self.http_metrics = settings, metrics, http_metrics
        self.tracer_provider = tracer_provider
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._tasks: set[asyncio.Task] = set()
        self._client = self._new_client()

    def _new_client(self) -> httpx.AsyncClient:
        size = self.settings.max_concurrency
        client = httpx.AsyncClient(
            base_url=str(self.settings.url),
            timeout=httpx.Timeout(self.settings.timeout_s),
            transport=httpx.AsyncHTTPTransport(
                limits=httpx.Limits(
                    max_connections=size, max_keepalive_connections=size
                ),
                socket_options=[NO_DELAY],
            ),
        )
        if self.tracer_provider is not None:
            HTTPXClientInstrumentor.instrument_client(
                client, tracer_provider=self.tracer_provider
            )
        return client

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def get(self, path: str) -> StoreAnswer:
        """GET ``path`` on the store within the deadline, or raise ``StoreError``."""
        try:
            async with asyncio.timeout(self.settings.queue_timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            if self.http_metrics is not None:
                self.http_metrics.shed.labels("feature_store_busy").inc()
            raise StoreBusy from None
        task = asyncio.create_task(self._exchange(path, REQUEST_ID.get()))
        self._tasks.add(task)
        task.add_done_callback(self._release)
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                answer = await asyncio.shield(task)
        except TimeoutError:
            self._count("timeout")
            raise StoreError("timeout") from None
        self._count(answer.status_code if isinstance(answer, StoreAnswer) else answer)
        if isinstance(answer, str):
            raise StoreError(answer)
        return answer

    def _release(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled():
            task.exception()  # retrieved: a failure here is already an outcome

    def _count(self, outcome: int | str) -> None:
        if isinstance(outcome, int):
            outcome = {200: "ok", 404: "not_found"}.get(outcome, "error")
        self.metrics.requests.labels(outcome).inc()

    async def _exchange(self, path: str, request_id: str) -> StoreAnswer | str:
        """One HTTP exchange; returns the answer or the outcome that prevented it."""
        try:
            response = await self._client.get(
                path, headers={REQUEST_ID_HEADER: request_id}
            )
        except httpx.PoolTimeout:
            logger.error("feature store pool exhausted: replacing it")
            old, self._client = self._client, self._new_client()
            await old.aclose()
            return "unreachable"
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError as exc:
            logger.warning(
                "feature store unreachable", extra={"error": type(exc).__name__}
            )
            return "unreachable"
        if response.status_code != 200:
            return StoreAnswer(response.status_code, None)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            logger.error("feature store sent a body that is not JSON")
            return "invalid"
        return StoreAnswer(200, body if isinstance(body, dict) else None)

    async def alive(self, within_s: float = 0.25) -> bool:
        """Whether the store answers its liveness probe within ``within_s``: a probe
        of this service must not wait for a hung store."""
        try:
            async with asyncio.timeout(within_s):
                return (await self.get("/health/live")).status_code == 200
        except (StoreError, TimeoutError):
            return False

    async def aclose(self) -> None:
        """Let the exchanges in flight end (bounded by timeout_s), then close."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.timeout_s + 1)
        await self._client.aclose()
