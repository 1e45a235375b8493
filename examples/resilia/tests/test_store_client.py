"""The API's client for the feature store, against stores that misbehave."""

import asyncio
import socket
import threading
import time
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from resilia.config import FeatureStoreSettings, load_settings
from resilia.schema import EXAMPLE_CUSTOMER
from resilia.serving.app import create_app
from resilia.serving.metrics import FeatureStoreMetrics
from resilia.serving.store_client import FeatureStoreClient, StoreBusy, StoreError
from resilia.testing import served_in_thread


@contextmanager
def serving(app):
    """``app`` served by uvicorn in a thread, on a free loopback port."""
    with served_in_thread(uvicorn.Config(app, log_level="error")) as (host, port):
        yield f"http://{host}:{port}"


@contextmanager
def hung_store():
    """A store that accepts connections and never answers (a SIGSTOPped process)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def odd_store():
    app = FastAPI()

    @app.get("/customers/C000001")
    def not_json():
        return PlainTextResponse("<html>maintenance</html>")

    @app.get("/customers/C000002")
    def a_list():
        return [1, 2]

    @app.get("/customers/C000003")
    def a_bad_record():
        return {"plan": "gold"}

    @app.get("/customers/C000004")
    def an_error():
        return PlainTextResponse("oops", status_code=500)

    return app


def test_a_store_that_answers_nonsense_is_never_a_500(trained):
    with serving(odd_store()) as url:
        settings = load_settings(
            "dev", environ={}, overrides={"feature_store": {"url": url}}
        )
        with TestClient(create_app(settings, *trained)) as client:
            statuses = [
                client.get(f"/customers/C00000{i}/churn").status_code
                for i in range(1, 5)
            ]
            metrics = client.get("/metrics").text
    assert statuses == [502, 502, 502, 503]
    assert 'resilia_feature_store_requests_total{outcome="invalid"} 1.0' in metrics


def test_readiness_answers_at_once_while_the_store_hangs(trained):
    with hung_store() as url:
        settings = load_settings(
            "dev", environ={}, overrides={"feature_store": {"url": url}}
        )
        with TestClient(create_app(settings, *trained)) as client:
            started = time.perf_counter()
            ready = client.get("/health/ready")
            elapsed = time.perf_counter() - started
            assert client.post("/predict", json=EXAMPLE_CUSTOMER).status_code == 200
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert elapsed < 0.5


def _client(url: str, **settings) -> FeatureStoreClient:
    values = {
        "url": url,
        "timeout_s": 0.5,
        "max_concurrency": 2,
        "queue_timeout_s": 0.05,
    }
    metrics = FeatureStoreMetrics(CollectorRegistry())
    return FeatureStoreClient(FeatureStoreSettings(**values | settings), metrics)


def test_one_deadline_per_call_and_no_queue_beyond_the_slots():
    async def scenario(url):
        client = _client(url)
        started = time.perf_counter()
        calls = [client.get(f"/customers/C00000{i}") for i in range(5)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        elapsed = time.perf_counter() - started
        # The slots stay taken until the exchanges end by httpx's own timeouts...
        assert client.in_flight == 2
        await client.aclose()
        assert client.in_flight == 0  # ... and are all given back.
        return results, elapsed

    with hung_store() as url:
        results, elapsed = asyncio.run(scenario(url))
    outcomes = sorted(type(r).__name__ for r in results)
    assert outcomes == ["StoreBusy"] * 3 + ["StoreError"] * 2
    assert {r.outcome for r in results if type(r) is StoreError} == {"timeout"}
    assert elapsed < 0.5 + 0.5  # the deadline, not a multiple of it


def test_a_cancelled_caller_does_not_cancel_the_exchange():
    """Callers that hang up (client disconnects, deadlines) never cut an exchange
    short: each ends on its own and gives its connection and slot back."""

    async def scenario(url):
        client = _client(url, timeout_s=1.0, max_concurrency=3)
        callers = [asyncio.create_task(client.get("/health/live")) for _ in range(3)]
        await asyncio.sleep(0.1)
        for caller in callers:
            caller.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        in_flight_after_cancel = client.in_flight
        await asyncio.sleep(1.5)  # the exchanges time out by themselves
        in_flight_later = client.in_flight
        try:
            await client.get("/health/live")
        except StoreError as error:
            outcome = error.outcome
        await client.aclose()
        return in_flight_after_cancel, in_flight_later, outcome

    with hung_store() as url:
        after_cancel, later, outcome = asyncio.run(scenario(url))
    assert (after_cancel, later) == (3, 0)
    assert outcome == "timeout"  # a slot was free again: a call, not StoreBusy


def test_the_same_pool_serves_again_once_the_store_answers_again():
    """A burst against a store that hangs, then one against the same store healed:
    the second burst is served at once by the same client (nothing leaked)."""
    hanging = threading.Event()
    app = FastAPI()

    @app.get("/health/live")
    async def live():
        if hanging.is_set():
            await asyncio.sleep(5)
        return {"status": "alive"}

    async def scenario(url):
        client = _client(url, max_concurrency=4)
        hanging.set()
        first = await asyncio.gather(
            *(client.get("/health/live") for _ in range(12)), return_exceptions=True
        )
        hanging.clear()
        await asyncio.sleep(0.6)  # the exchanges end by their own timeouts
        second = await asyncio.gather(*(client.get("/health/live") for _ in range(4)))
        await client.aclose()
        return first, second

    with serving(app) as url:
        first, second = asyncio.run(scenario(url))
    assert (
        sorted(type(r).__name__ for r in first)
        == ["StoreBusy"] * 8 + ["StoreError"] * 4
    )
    assert [a.status_code for a in second] == [200] * 4


@pytest.mark.parametrize("queue_timeout_s", [0.0, 0.2])
def test_busy_answers_come_within_the_queue_timeout(queue_timeout_s):
    async def scenario(url):
        client = _client(url, max_concurrency=1, queue_timeout_s=queue_timeout_s)
        first = asyncio.create_task(client.get("/health/live"))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(StoreBusy):
            await client.get("/health/live")
        waited = time.perf_counter() - started
        await asyncio.gather(first, return_exceptions=True)
        await client.aclose()
        return waited

    with hung_store() as url:
        waited = asyncio.run(scenario(url))
    assert queue_timeout_s <= waited < queue_timeout_s + 0.2
