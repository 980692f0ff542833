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

    @property
    def errors(self) -> list[InvalidAnswer]:
        """Every problem found, this one first: one, unless it is :class:`InvalidAnswers`."""
        return [self]


class InvalidAnswers(InvalidAnswer):
    """Every problem of one set of answers, so that a client fixes them in one go; ``field``
    and ``message`` are the first's (what a handler of a single InvalidAnswer shows)."""

    def __init__(self, errors: list[InvalidAnswer]) -> None:
        if not errors:
            raise ValueError("InvalidAnswers needs at least one error")
        super().__init__(errors[0].field, errors[0].message)
        self.args = ("; ".join(str(e) for e in errors),)
        self._errors = list(errors)

    @property
    def errors(self) -> list[InvalidAnswer]:
        return list(self._errors)


class InvalidPlan(EngineError):
    pass


class PathScopeViolation(EngineError):
    pass
