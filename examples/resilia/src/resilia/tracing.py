"""OpenTelemetry tracing: one tracer provider per process, spans written as JSON lines.

A real deployment exports spans over OTLP to a collector (Jaeger, Tempo...). Here each
process appends its finished spans to a JSON-lines file, which the course notebook
reads back to draw the trace. The W3C ``traceparent`` header carries the context from
the API to the feature store.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from resilia.config import Settings
from resilia.logs import mask_text

CUSTOMER_ID = re.compile(r"\bC\d{6}\b")


def redact(value: str) -> str:
    """Hide customer ids and e-mail addresses, e.g. in URLs recorded by instrumentations."""
    return CUSTOMER_ID.sub("C******", mask_text(value))


def redact_span(span: Span, *_) -> None:
    """Rewrite personal data out of a span's attributes (``http.target``, ``http.url``...).

    Also usable as an instrumentation hook: ``server_request_hook=redact_span``.
    """
    if not span.is_recording():
        return
    for key, value in dict(span.attributes or {}).items():
        if isinstance(value, str) and (clean := redact(value)) != value:
            span.set_attribute(key, clean)


class RedactingSpanProcessor(SpanProcessor):
    """Redacts the attributes that instrumentations set when they start a span."""

    def on_start(self, span: Span, parent_context=None) -> None:
        redact_span(span)


class JsonLinesSpanExporter(SpanExporter):
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
    }


def make_tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """A tracer provider for ``service``, or None when tracing is disabled."""
    if not settings.tracing.enabled:
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": service, "deployment.environment": settings.environment.value}
        ),
        sampler=ParentBased(TraceIdRatioBased(settings.tracing.sample_ratio)),
    )
    provider.add_span_processor(RedactingSpanProcessor())
    if settings.tracing.export_path is not None:
        provider.add_span_processor(
            BatchSpanProcessor(
                JsonLinesSpanExporter(settings.tracing.export_path), schedule_delay_millis=500
            )
        )
    return provider


def get_tracer(provider: TracerProvider | None, name: str) -> trace.Tracer:
    return provider.get_tracer(name) if provider else trace.NoOpTracer()
