"""OpenTelemetry tracing: one tracer provider per process, spans written as JSON lines.

A real deployment exports spans over OTLP to a collector (Jaeger, Tempo...). Here each
process appends its finished spans to a JSON-lines file, which the course notebook
reads back to draw the trace. The W3C ``traceparent`` header carries the context from
the API to the feature store.

Instrumentations record whatever the request carries (URL, query string, user agent,
client address). Only the attributes listed in ``SAFE_ATTRIBUTES`` leave the process:
an allow-list, because a deny-list forgets the next attribute a library adds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Status

from resilia.config import Settings

SAFE_ATTRIBUTES = frozenset(
    {
        "http.method",
        "http.request.method",
        "http.route",
        "http.scheme",
        "url.scheme",
        "http.status_code",
        "http.response.status_code",
        "http.flavor",
        "network.protocol.version",
        "server.port",
        "net.host.port",
        "net.peer.port",
        "error.type",
        "exception.type",
    }
)
"""Span and event attributes that never hold personal data (plus ``resilia.*``)."""


def _safe(attributes) -> dict:
    return {
        key: value
        for key, value in (attributes or {}).items()
        if key in SAFE_ATTRIBUTES or key.startswith("resilia.")
    }


def scrub(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` with only safe attributes, events and status."""
    return ReadableSpan(
        name=span.name,
        context=span.get_span_context(),
        parent=span.parent,
        resource=span.resource,
        attributes=_safe(span.attributes),
        events=[Event(e.name, _safe(e.attributes), e.timestamp) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),  # its description may quote input
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingSpanProcessor(SpanProcessor):
    """Hands the exporting processor a scrubbed copy of every finished span."""

    def __init__(self, exporting: SpanProcessor) -> None:
        self.exporting = exporting

    def on_start(self, span, parent_context=None) -> None:
        self.exporting.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.exporting.on_end(scrub(span))

    def shutdown(self) -> None:
        self.exporting.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporting.force_flush(timeout_millis)


class JsonLinesSpanExporter(SpanExporter):
    """Write finished spans to a file, one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_to_dict(span)) + "\n" for span in spans]
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.writelines(lines)
        return SpanExportResult.SUCCESS


def span_to_dict(span: ReadableSpan) -> dict:
    """The fields of a span worth keeping, as a JSON-ready dict."""
    context = span.get_span_context()
    return {
        "service": span.resource.attributes.get("service.name"),
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [e.name for e in span.events],
    }


def make_tracer_provider(
    settings: Settings, service: str, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """A tracer provider for ``service``, or None when tracing is disabled.

    Spans go to ``exporter`` if given, else to ``tracing.export_path`` if set.
    """
    if not settings.tracing.enabled:
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": service,
                "deployment.environment": settings.environment.value,
            }
        ),
        sampler=ParentBased(TraceIdRatioBased(settings.tracing.sample_ratio)),
    )
    if exporter is None and settings.tracing.export_path is not None:
        exporter = JsonLinesSpanExporter(settings.tracing.export_path)
    if exporter is not None:
        batch = BatchSpanProcessor(exporter, schedule_delay_millis=500)
        provider.add_span_processor(ScrubbingSpanProcessor(batch))
    return provider


def get_tracer(provider: TracerProvider | None, name: str) -> trace.Tracer:
    """A tracer from ``provider``, or one that records nothing."""
    return provider.get_tracer(name) if provider else trace.NoOpTracer()
