"""FORGEFLOW_OTEL_ENABLED: one trace from the API's create through the workflow to its
activities, collected here with an in-memory exporter."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import forgeflow.tracing
from forgeflow.temporal import connect
from forgeflow.tracing import client_interceptors
from forgeflow.worker import build_worker
from tests.support import LiveServer


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # A provider of the test's own: the process-wide one stays untouched.
    monkeypatch.setattr(forgeflow.tracing, "tracer", lambda: provider.get_tracer("forgeflow"))
    return exporter


def test_tracing_is_off_by_default(settings):
    assert settings.otel_enabled is False and client_interceptors(settings) == []


async def test_a_create_is_traced_through_workflow_and_activities(settings, db, make_key, spans):
    traced = settings.model_copy(update={"otel_enabled": True})
    client = await connect(traced)
    key = make_key()
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with (
            build_worker(client, traced, db=db, executor=executor),
            LiveServer(traced) as server,
            httpx.AsyncClient(base_url=f"{server.url}/api/v1") as http,
        ):
            created = await http.post("/projects", json={"project_name": "Traced"}, headers={"X-API-Key": key.key})
            assert created.status_code == 201, created.text
            for _ in range(300):
                names = {span.name for span in spans.get_finished_spans()}
                if {"RunActivity:prepare", "RunActivity:verify_and_export"} <= names:
                    break
                await asyncio.sleep(0.1)
    finished = spans.get_finished_spans()
    names = {span.name for span in finished}
    for expected in (
        "StartWorkflow:ProjectGenerationWorkflow",
        "RunWorkflow:ProjectGenerationWorkflow",
        "StartActivity:prepare",  # clarify, spec and decompose of a run that waits for nobody
        "RunActivity:prepare",
        "RunActivity:verify_and_export",
    ):
        assert expected in names, sorted(names)
    start = next(s for s in finished if s.name == "StartWorkflow:ProjectGenerationWorkflow")
    assert start.context is not None
    trace_id = start.context.trace_id
    related = [s for s in finished if s.name.startswith(("RunWorkflow", "StartActivity", "RunActivity"))]
    assert related and all(s.context is not None and s.context.trace_id == trace_id for s in related)
