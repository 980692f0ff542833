"""Connecting to Temporal: one client per process, always with the pydantic converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from forgeflow.settings import Settings


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
    )
