"""What the model must answer, phase by phase: the output tools' argument schemas. A
schema-violating answer goes back to the model with Pydantic's errors (a bounded number
of times), so every rule a model can break is written here, where it can read it back."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

QUESTION_ID = r"^[a-z][a-z0-9_]{0,63}$"
TASK_ID = r"^[a-z0-9][a-z0-9_-]{0,49}$"
MAX_QUESTIONS = 5
MAX_TASKS = 60


class AgentQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=QUESTION_ID,
        description="snake_case; a template variable's name when the question sets that variable",
    )
    question: str = Field(min_length=1, max_length=500)
    type: Literal["boolean", "single_choice", "text"]
    options: list[str] | None = Field(
        default=None, description="single_choice only: 2 to 10 distinct options; null for the other types"
    )
    recommended: bool | str = Field(
        description="the answer you recommend: true/false for boolean, one of the options for single_choice"
    )
    why: str = Field(default="", max_length=500, description="one sentence: why the answer matters")

    @model_validator(mode="after")
    def _typed(self) -> Self:
        if self.type == "single_choice":
            if not self.options or not 2 <= len(self.options) <= 10 or len(set(self.options)) != len(self.options):
                raise ValueError("a single_choice question needs 2 to 10 distinct options")
            if self.recommended not in self.options:
                raise ValueError(f"recommended must be one of the options {self.options}")
        elif self.options is not None:
            raise ValueError(f"a {self.type} question takes no options (null)")
        if self.type == "boolean" and not isinstance(self.recommended, bool):
            raise ValueError("a boolean question's recommended answer is true or false")
        if self.type == "text" and not isinstance(self.recommended, str):
            raise ValueError("a text question's recommended answer is a string")
        return self


class ClarifyOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: list[AgentQuestion] = Field(max_length=MAX_QUESTIONS)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        return self


class SpecOutput(BaseModel):
    """The four documents, in Markdown."""

    model_config = ConfigDict(extra="forbid")

    spec_md: str = Field(min_length=1, max_length=60_000, description="SPEC.md: what to build and why")
    acceptance_md: str = Field(min_length=1, max_length=30_000, description="ACCEPTANCE.md: checkable criteria")
    routes_md: str = Field(min_length=1, max_length=30_000, description="ROUTES.md: the HTTP routes")
    data_md: str = Field(min_length=1, max_length=30_000, description="DATA.md: the data model")

    def documents(self) -> dict[str, str]:
        return {
            "SPEC.md": self.spec_md,
            "ACCEPTANCE.md": self.acceptance_md,
            "ROUTES.md": self.routes_md,
            "DATA.md": self.data_md,
        }


class PlanTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=TASK_ID)
    title: str = Field(min_length=1, max_length=200)
    instructions: str = Field(min_length=1, max_length=4000)
    dependencies: list[str] = Field(default_factory=list, description="ids of tasks that must finish first")
    path_scope: list[str] = Field(
        min_length=1,
        max_length=20,
        description="globs relative to the project root (** spans directories, * one segment): "
        "the only files the task may write",
    )
    expected_outputs: list[str] = Field(default_factory=list, max_length=50, description="files inside path_scope")


class PlanOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[PlanTask] = Field(min_length=1, max_length=MAX_TASKS)
