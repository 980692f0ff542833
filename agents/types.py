"""Pass-through types of agent mode: the one argument and the result of the agent phase
workflow and of its activities. Pydantic models and the standard library only, so a
workflow may import them (``workflow.unsafe.imports_passed_through()``) without pulling
Pydantic AI, the OpenAI client or SQLAlchemy into its sandbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from agents.schemas import ClarifyOutput, PlanOutput, SpecOutput
from workflows.agent_types import AgentBudget
from workflows.change_types import ChangeRequest
from workflows.types import PlanResult, QuestionModel, SpecResult

__all__ = ["AgentBudget"]  # re-exported: the phases take the project's budget as the API stored it

# The phase's workflow (a phase run alone; the project's workflow runs its phases itself,
# agents/workflow.py) and the phase's activities, by name.
AGENT_PHASE_WORKFLOW = "AgentPhaseWorkflow"
PREPARE_AGENT_PHASE = "prepare_agent_phase"
RECORD_AGENT_REQUEST = "record_agent_request"
STORE_AGENT_OUTPUT = "store_agent_output"


class AgentPhase(StrEnum):
    CLARIFY = "clarify"
    SPEC = "spec"
    PLAN = "plan"


class ProjectBrief(BaseModel):
    """The client's own words. Prompts carry them as data, never as instructions."""

    name: str
    slug: str
    description: str = ""


class AgentPhaseInput(BaseModel):
    project_id: int
    run_number: int = 1
    phase: AgentPhase
    template: str
    brief: ProjectBrief
    # What the client answered (template variables and the agent's own questions, by id).
    answers: dict[str, Any] = Field(default_factory=dict)
    # The questions asked (clarify's output), so SPEC.md can log each with its answer.
    questions: list[QuestionModel] = Field(default_factory=list)
    # spec: the version to write and every piece of review feedback so far.
    version: int = 1
    feedback: list[str] = Field(default_factory=list)
    # plan: the approved spec's documents (SpecResult.documents_key).
    spec_key: str | None = None
    task_id: str | None = None  # for phases that work on one task (later); recorded with the usage
    budget: AgentBudget = Field(default_factory=AgentBudget)
    # A run on demand: the client's change and the spec it changes; the phases write a delta.
    change: ChangeRequest | None = None


class Spend(BaseModel):
    """A project's model usage on record: every run, phase and task."""

    requests: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    # Requests whose cost the price tables could not give, and the models they went to.
    unpriced_requests: int = 0
    unpriced_models: list[str] = Field(default_factory=list)


class RequestUsage(BaseModel):
    """One completed model request, as its response reported it (no prompt text)."""

    number: int  # 1, 2, ... within the phase's run
    model: str
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None  # None: the price tables do not know the model


class RecordRequestInput(BaseModel):
    key: str  # unique per request: a retried recording is stored once
    project_id: int
    run_number: int
    phase: AgentPhase
    task_id: str | None
    number: int
    model: str  # as the response named it (else the configured model)
    provider: str | None
    provider_url: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    responded_at: datetime | None = None  # prices may change over time


def response_usage(response: Any, *, default_model: str) -> dict[str, Any]:
    """What a model response (Pydantic AI's ModelResponse) gives a request's record: the
    model as the response named it (else ``default_model``), the provider, the tokens and
    when it answered."""
    usage = response.usage
    return {
        "model": response.model_name or default_model,
        "provider": response.provider_name,
        "provider_url": response.provider_url,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "responded_at": response.timestamp,
    }


class RecordedRequest(BaseModel):
    usage: RequestUsage
    spent: Spend  # the project's spend with this request


class Reproducibility(BaseModel):
    """Stored with each output: what produced it, enough to ask the same question again."""

    model: str
    base_url_host: str
    temperature: float | None = None
    seed: int | None = None
    instructions_sha256: str
    prompt_sha256: str
    models_answering: list[str] = Field(default_factory=list)
    requests: list[RequestUsage] = Field(default_factory=list)


class PhaseStart(BaseModel):
    """What a phase starts from: the prompt (the client's text as data) and the spend so far."""

    prompt: str
    spent: Spend
    reproducibility: Reproducibility


class StoreOutputInput(BaseModel):
    request: AgentPhaseInput
    reproducibility: Reproducibility  # with the requests on record before the last
    # The request that gave the output, recorded by the same step before the output is stored.
    last_request: RecordRequestInput | None = None
    # The phase's own output, one of the three.
    questions: ClarifyOutput | None = None
    spec: SpecOutput | None = None
    plan: PlanOutput | None = None


class StoredOutput(BaseModel):
    key: str  # the output's artifact key (for the spec, the documents' prefix)
    questions: list[QuestionModel] | None = None
    spec: SpecResult | None = None
    plan: PlanResult | None = None


class StoredPhaseOutput(BaseModel):
    output: StoredOutput
    last_request: RecordedRequest | None = None  # StoreOutputInput.last_request, on record


class BudgetExceeded(BaseModel):
    limits: list[Literal["max_total_tokens", "max_cost_usd"]]  # what ran out
    message: str  # says what was spent against which limit, and names unpriced models


class AgentPhaseResult(BaseModel):
    status: Literal["completed", "budget_exceeded"]
    phase: AgentPhase
    # completed: the phase's output, in the template path's own types, and where it is stored.
    output: StoredOutput | None = None
    budget_exceeded: BudgetExceeded | None = None
    requests: list[RequestUsage] = Field(default_factory=list)
    spent: Spend  # the project's spend when the phase ended
