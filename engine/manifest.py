"""The optional ``forgeflow.yaml`` beside ``cookiecutter.json``: what cookiecutter lacks
(typed questions, feature modules for the task DAG, spec fragments, checks)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

QuestionType = Literal["boolean", "single_choice", "text"]


class QuestionDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # None: inferred from the variable's default, as for a variable with no entry (so an
    # entry that only adds `help` or `required` keeps a yes/no variable a boolean).
    type: QuestionType | None = None
    prompt: str | None = None
    help: str = ""
    options: list[str] | None = None
    pattern: str | None = None
    when: str | None = None
    # Unanswered, a question takes its default; a required one must be answered (at create,
    # or at the answers gate when the run asks).
    required: bool = False


class RouteDef(BaseModel):
    method: str
    path: str
    description: str = ""


class DataDef(BaseModel):
    model: str
    fields: list[str] = Field(default_factory=list)
    description: str = ""


class SpecFragment(BaseModel):
    routes: list[RouteDef] = Field(default_factory=list)
    data: list[DataDef] = Field(default_factory=list)
    acceptance: list[str] = Field(default_factory=list)


class ModuleDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = ""
    paths: list[str] = Field(default_factory=lambda: ["**"])
    depends_on: list[str] = Field(default_factory=list)
    when: str | None = None
    expected_outputs: list[str] = Field(default_factory=list)
    spec: SpecFragment = Field(default_factory=SpecFragment)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    forgeflow: int = 1
    version: str = "0.0.0"
    title: str = ""
    description: str = ""
    checks: list[str] = Field(default_factory=list)
    questions: dict[str, QuestionDef] = Field(default_factory=dict)
    modules: list[ModuleDef] = Field(default_factory=list)
