"""Connecting to Temporal: one client per process, always with the pydantic converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from forgeflow.settings import Settings
from forgeflow.tracing import client_interceptors


async def connect(settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        runtime=runtime,
        interceptors=client_interceptors(settings),
    )


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving the SDK's own metrics (``temporal_*``) for Prometheus at
    ``bind_address``. Raises ValueError when the address cannot be bound."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))
