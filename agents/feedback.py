"""What the model was told its answers got wrong, so that a phase that runs out of output
retries fails with an error saying what the model kept getting wrong. Pure: workflow code."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_ai.exceptions import ModelRetry, ToolRetryError
from pydantic_ai.messages import ModelRequest, ModelRequestPart, RetryFeedbackPart, ToolReturnPart

MAX_PROBLEM_CHARS = 2000


def feedback_text(part: ModelRequestPart) -> str | None:
    """The retry feedback a request part carries back to the model, if it is one."""
    if isinstance(part, RetryFeedbackPart):
        return part.model_response()
    if isinstance(part, ToolReturnPart) and part.retry is not None:
        return part.model_response_str()
    return None


class Problems:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def note(self, request: ModelRequest) -> None:
        self.seen += [text for part in request.parts if (text := feedback_text(part)) is not None]

    def failed(self, error: BaseException) -> None:
        """The last problem, which ended the retries, is in the error's causes."""
        cause: BaseException | None = error
        while cause is not None:
            if isinstance(cause, ToolRetryError) and (text := feedback_text(cause.tool_retry)) is not None:
                self.seen.append(text)
                return
            if isinstance(cause, ModelRetry):
                self.seen.append(cause.message)
                return
            if isinstance(cause, ValidationError):
                errors = cause.errors(include_url=False)
                self.seen.append("; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in errors))
                return
            cause = cause.__cause__

    def summary(self, phase: str, error: BaseException) -> str:
        if not self.seen:
            return f"the model's answer in the {phase} phase was unusable: {error}"
        last = self.seen[-1]
        if len(last) > MAX_PROBLEM_CHARS:
            last = last[:MAX_PROBLEM_CHARS] + " …"
        return (
            f"the model's answer in the {phase} phase was rejected {len(self.seen)} time(s) ({error}); "
            f"what it kept getting wrong, last time: {last}"
        )
