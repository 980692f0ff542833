"""Request and response bodies of the Djass Projects API v1, field for field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from api.validation import MAX_NESTING, ClientText, field_rules, within_depth
from store.models import Project
from workflows.agent_types import DEFAULT_FIX_ATTEMPTS, MAX_BRIEF_CHARS, MAX_FIX_ATTEMPTS


def _iso_utc(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str)]
OptionalTimestamp = Annotated[datetime | None, PlainSerializer(_iso_utc, return_type=str | None)]


def _flag(value: Any) -> Any:
    # JSON true/false as well as "y"/"n", stored as the "y"/"n" the template compares.
    return ("y" if value else "n") if isinstance(value, bool) else value


Flag = Annotated[Literal["y", "n"], BeforeValidator(_flag, json_schema_input_type=Literal["y", "n"] | bool)]
ProjectStatusName = Literal[
    "queued", "generating", "awaiting_answers", "awaiting_approval", "awaiting_budget", "ready", "failed", "cancelled"
]

FLAG_FIELDS = (
    "use_posthog",
    "use_buttondown",
    "use_s3",
    "use_stripe",
    "use_sentry",
    "generate_blog",
    "generate_docs",
    "use_mjml",
    "use_ai",
    "use_logfire",
    "use_healthchecks",
    "use_ci",
)


# Bounds of a budget: far beyond any real one, short of what a client's JSON number loses.
MAX_BUDGET_TOKENS = 10**12
MAX_BUDGET_USD = 1_000_000.0


class Budget(ClientText):
    """What agent mode may spend on models, every run and phase of the project together. At
    least one limit; a limit left out is no limit."""

    model_config = ConfigDict(extra="forbid")

    max_total_tokens: int | None = Field(
        default=None, ge=1, le=MAX_BUDGET_TOKENS, strict=True, description="Input and output tokens, in all"
    )
    max_cost_usd: float | None = Field(
        default=None, gt=0, le=MAX_BUDGET_USD, strict=True, allow_inf_nan=False, description="US dollars, in all"
    )
    max_cost_usd_per_task: float | None = Field(
        default=None,
        gt=0,
        le=MAX_BUDGET_USD,
        strict=True,
        allow_inf_nan=False,
        description="US dollars one coding agent may spend on one task (as it reports them)",
    )

    @model_validator(mode="after")
    def _some_limit(self) -> Budget:
        if self.max_total_tokens is None and self.max_cost_usd is None and self.max_cost_usd_per_task is None:
            raise ValueError("give max_total_tokens, max_cost_usd, max_cost_usd_per_task or several")
        return self


class AgentOptions(ClientText):
    """Agent mode: a model writes the questions, the spec and the plan from the brief."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    model: str | None = Field(
        default=None, min_length=1, max_length=200, description="The configured model (FORGEFLOW_LLM_MODEL), if named"
    )
    budget: Budget | None = Field(default=None, description="None: no limit")
    coding_agent: Literal["builtin", "claude-code", "codex", "command"] | None = Field(
        default=None,
        description="Who builds the plan's tasks, each in its own git work tree: one of the kinds the server "
        "allows (FORGEFLOW_CODING_AGENT, FORGEFLOW_CODING_AGENTS_ALLOWED); absent: the server's default",
    )
    max_fix_attempts: int | None = Field(
        default=None,
        ge=0,
        le=MAX_FIX_ATTEMPTS,
        strict=True,
        description="With a coding agent: fix tasks in a row a failing verification goes back to before the "
        f"run fails (default {DEFAULT_FIX_ATTEMPTS})",
    )
    review: Literal["diff", "none"] | None = Field(
        default=None,
        description='With a coding agent: "diff" waits, once the build is merged and verified, for a review of '
        "its diff (approve, reject or regenerate with feedback); absent or none: no review",
    )


class ProjectCreate(ClientText):
    """Only ``project_name`` is required; absent fields take the template's defaults.

    The Djass fields are typed here; any other field must be a variable of the chosen
    template (checked against it when the project is created)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    template: str | None = Field(default=None, max_length=100, description="Template id (default: djass-saas)")
    answers: dict[str, Any] | None = Field(
        default=None, description="More template variables, by name (under the same rules as the fields below)"
    )
    require_approval: bool | None = Field(default=None, description="Wait for the spec to be approved")
    ask_questions: bool | None = Field(default=None, description="Wait for answers to what the request left open")
    webhook_url: str | None = Field(default=None, max_length=2000, description="Receives every status change")
    agent: AgentOptions | None = Field(default=None, description="Agent mode (needs a model provider configured)")
    prompt: str | None = Field(
        default=None,
        max_length=MAX_BRIEF_CHARS,
        description="Agent mode's brief (else project_description is), at most FORGEFLOW_LLM_MAX_BRIEF_CHARS",
    )
    project_name: str = Field(min_length=1, max_length=200)
    project_slug: str | None = Field(default=None, max_length=200)
    project_description: str | None = Field(default=None, max_length=5000)
    repo_url: str | None = Field(default=None, max_length=500)
    author_name: str | None = Field(default=None, max_length=200)
    author_email: str | None = Field(default=None, max_length=254)
    author_url: str | None = Field(default=None, max_length=500)
    project_main_color: str | None = Field(default=None, max_length=50)
    use_posthog: Flag | None = None
    use_buttondown: Flag | None = None
    use_s3: Flag | None = None
    use_stripe: Flag | None = None
    use_sentry: Flag | None = None
    generate_blog: Flag | None = None
    generate_docs: Flag | None = None
    use_mjml: Flag | None = None
    use_ai: Flag | None = None
    use_logfire: Flag | None = None
    use_healthchecks: Flag | None = None
    use_ci: Flag | None = None


OPT_IN_FIELDS = ("template", "answers", "require_approval", "ask_questions", "webhook_url", "agent", "prompt")
# The rules of each template-variable field, for the same name in ``answers``: a value there
# is held to exactly what it would be held to at the top level.
FIELD_RULES = field_rules(ProjectCreate, (name for name in ProjectCreate.model_fields if name not in OPT_IN_FIELDS))
EXTENSION_FIELDS = ("phase", "template", "current_run", "spec_version")


class ProjectPublic(BaseModel):
    """The v1 project. Projects created with any lifecycle option also carry ``phase``,
    ``template``, ``current_run`` and ``spec_version``; v1 clients never see them."""

    id: int
    name: str
    slug: str
    status: ProjectStatusName
    error_message: str
    created_at: Timestamp
    updated_at: Timestamp
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp
    artifact_ready: bool
    input_payload: dict[str, Any]
    phase: str | None = None
    template: str | None = None
    current_run: int | None = None
    spec_version: int | None = None
    # Paused by its owner (POST /pause): no new task starts until /resume.
    paused: bool = False

    @model_serializer(mode="wrap")
    def _v1_unless_opted_in(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.phase is None:
            for name in EXTENSION_FIELDS:
                data.pop(name, None)
            if not self.paused:  # a v1 client sees it only once it has paused the project
                data.pop("paused", None)
        return data

    @classmethod
    def of(cls, project: Project) -> ProjectPublic:
        public = cls.model_validate(project, from_attributes=True)
        if not within_depth(public.input_payload):
            # A row stored before nesting was bounded: shown without what cannot be
            # serialized, so that one row never breaks its owner's list.
            public.input_payload = {
                name: value if within_depth(value, MAX_NESTING - 1) else "(nested too deeply to show)"
                for name, value in public.input_payload.items()
            }
        if not any(name in project.input_payload for name in OPT_IN_FIELDS):
            public.phase = public.template = public.current_run = public.spec_version = None
        return public


class ProjectEnvelope(BaseModel):
    project: ProjectPublic


class ProjectStatusPublic(BaseModel):
    id: int
    status: ProjectStatusName
    error_message: str
    artifact_ready: bool
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, project: Project) -> ProjectStatusPublic:
        return cls.model_validate(project, from_attributes=True)


ProjectSort = Literal["created_at", "-created_at", "updated_at", "-updated_at", "name", "-name"]


class ProjectFilters(BaseModel):
    """The filters the list applied. v1 shape: ``{"status": <one status or null>}``; ``q`` and
    ``sort`` appear only when given, ``status`` is a list only when several were given."""

    status: ProjectStatusName | list[ProjectStatusName] | None = None
    q: str | None = None
    sort: ProjectSort | None = None

    @model_serializer(mode="wrap")
    def _v1_unless_asked(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {name: value for name, value in data.items() if name == "status" or value is not None}


class ProjectList(BaseModel):
    projects: list[ProjectPublic]
    total: int
    limit: int
    offset: int
    has_next: bool
    filters: ProjectFilters
    # Only with ?include=status_counts: a v1 client sees exactly the v1 body.
    status_counts: dict[ProjectStatusName, int] | None = Field(
        default=None, description="Projects per status for the owner, archived ones not (include=status_counts)"
    )

    @model_serializer(mode="wrap")
    def _v1_unless_asked(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.status_counts is None:
            data.pop("status_counts", None)
        return data
