"""The pure generation engine: templates -> questions, spec, task plan, rendered files,
verified and archived. No Temporal, no database."""

from __future__ import annotations


class EngineError(Exception):
    """A problem with the template or the answers: retrying will not help."""


class UnknownTemplate(EngineError):
    def __init__(self, template_id: str, available: list[str]) -> None:
        super().__init__(f"unknown template {template_id!r}; available: {', '.join(available)}")
        self.template_id = template_id
        self.available = available


class InvalidAnswer(EngineError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidPlan(EngineError):
    pass


class PathScopeViolation(EngineError):
    pass
