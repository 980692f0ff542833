"""forgeflow: a durable project-generation orchestrator on Temporal."""

__version__ = "0.1.0"
