"""Optional OpenTelemetry tracing (``FORGEFLOW_OTEL_ENABLED=true``): Temporal's
TracingInterceptor on the one client of each process, so a create in the API, the
workflow it starts and every activity share one trace. The worker takes the client's
interceptors. Spans go to the global OpenTelemetry tracer provider; see the README for
exporting them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from forgeflow.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer
    from temporalio.client import Interceptor

log = logging.getLogger("forgeflow.tracing")


def tracer() -> Tracer:
    from opentelemetry import trace

    return trace.get_tracer("forgeflow")


def client_interceptors(settings: Settings) -> list[Interceptor]:
    if not settings.otel_enabled:
        return []
    try:
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError:  # opentelemetry-api missing: tracing asked for, not possible
        log.warning("FORGEFLOW_OTEL_ENABLED is set but opentelemetry is not installed; no tracing")
        return []
    return [TracingInterceptor(tracer())]


def configure_tracing(settings: Settings, service_name: str) -> None:
    """For `forgeflow api` and `forgeflow worker`: an SDK tracer provider exporting over
    OTLP (standard ``OTEL_EXPORTER_OTLP_*`` variables), unless one is set up already
    (e.g. by ``opentelemetry-instrument``) or the packages are not installed."""
    if not settings.otel_enabled:
        return
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("tracing on, but no exporter: pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http")
        return
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
