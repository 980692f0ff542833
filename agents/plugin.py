"""Pydantic AI's Temporal plugin, with its TypeAdapter cache reaching workflow code.

A workflow builds its own payload converter, from the worker's data converter, each time
it starts: with Temporal's ``PydanticPayloadConverter`` (forgeflow's client) each run of a
workflow has a TypeAdapter cache of its own, and Pydantic AI's model responses are
dataclasses whose schema pydantic builds anew for each one. Measured on the benchmark's
machine: the workflow task that takes a model's response, 31-37 ms before, 11 ms with
adapters kept; the schema builds were most of agent mode's workflow CPU.
``PydanticAIPayloadConverter`` writes the same JSON and keeps its adapters for the life of
the process. Pydantic AI's plugin puts it on a client it configures, not on a worker's,
so this one does that for the worker it configures, the rest of the plugin unchanged."""

from __future__ import annotations

import dataclasses

from pydantic_ai.durable_exec.temporal import PydanticAIPayloadConverter, PydanticAIPlugin
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.worker import WorkerConfig


class AgentWorkerPlugin(PydanticAIPlugin):
    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        config = super().configure_worker(config)
        client = config.get("client")
        # Only Temporal's own Pydantic converter is swapped: a custom one stays as it is.
        if client is not None and client.data_converter.payload_converter_class is PydanticPayloadConverter:
            settings = client.config()
            settings["data_converter"] = dataclasses.replace(
                client.data_converter, payload_converter_class=PydanticAIPayloadConverter
            )
            config["client"] = Client(**settings)  # the same connection and namespace
        return config
