"""Agent mode as a request asks for it: checked against the server's model provider when a
project is created (and again when it is retried), and the answers to a model's own
questions, which are no template variables, checked by the type each question was asked with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.provider import missing_llm_setting, missing_llm_settings
from api.errors import ApiError, invalid_field
from api.schemas import AgentOptions, Budget, ProjectCreate
from api.validation import MAX_TEXT
from engine.context import YES_NO
from forgeflow.settings import Settings
from store.models import Project
from workflows.agent_types import DEFAULT_FIX_ATTEMPTS, AgentBudget, AgentMode, CodingAgentKind

# The create fields of agent mode: no template variables, echoed in input_payload as sent.
AGENT_FIELDS = ("agent", "prompt")


def agent_mode_unavailable(settings: Settings) -> ApiError:
    sentence = missing_llm_setting(settings) or "agent mode needs a model provider"
    return ApiError(
        400,
        "agent_mode_unavailable",
        "validation",
        f"{sentence[:1].upper()}{sentence[1:]} (on the API and the workers).",
        details={"field": "agent", "missing": missing_llm_settings(settings)},
    )


def unknown_model(model: str, available: str) -> ApiError:
    return ApiError(
        400,
        "unknown_model",
        "validation",
        f"Model {model!r} is not available here; this server's model is {available!r}.",
        details={"field": "agent.model", "available": [available]},
    )


def agent_budget(budget: Budget | None) -> AgentBudget:
    if budget is None:
        return AgentBudget()
    return AgentBudget(
        max_total_tokens=budget.max_total_tokens,
        max_cost_usd=budget.max_cost_usd,
        max_cost_usd_per_task=budget.max_cost_usd_per_task,
    )


def configured_model(settings: Settings) -> str:
    """The provider's model; ApiError 400 ``agent_mode_unavailable`` without a provider."""
    if missing_llm_setting(settings) is not None or settings.llm_model is None:
        raise agent_mode_unavailable(settings)
    return settings.llm_model.strip()


def requested_agent_mode(body: ProjectCreate, settings: Settings) -> AgentMode | None:
    """The agent mode a create asks for (None: the template engine alone, as ever). The brief
    is ``prompt``, else ``project_description``: the client's words, carried to the model as
    data, under the same text rules as every other field (api.validation)."""
    options: AgentOptions | None = body.agent
    if options is None:
        if body.prompt is not None:
            raise invalid_field("prompt", 'is the brief of agent mode: send it with "agent"')
        return None
    model = configured_model(settings)
    coding_agent = chosen_coding_agent(options, settings)
    if options.model is not None and options.model != model:
        raise unknown_model(options.model, model)
    field, brief = "prompt", body.prompt
    if brief is None:
        field, brief = "project_description", body.project_description
    if not brief:
        raise invalid_field("prompt", "agent mode needs a brief: prompt, or project_description")
    limit = settings.llm_max_brief_chars
    if len(brief) > limit:
        raise ApiError(
            400,
            "invalid_payload",
            "validation",
            f"Invalid value for {field}: a brief may have at most {limit} characters (FORGEFLOW_LLM_MAX_BRIEF_CHARS).",
            details={"field": field, "max_chars": limit},
        )
    if options.review == "diff" and coding_agent is None:
        raise invalid_field("agent.review", "a review of the build's diff needs a coding agent (agent.coding_agent)")
    return AgentMode(
        brief=brief,
        model=model,
        budget=agent_budget(options.budget),
        coding_agent=coding_agent,
        max_fix_attempts=DEFAULT_FIX_ATTEMPTS if options.max_fix_attempts is None else options.max_fix_attempts,
        review="diff" if options.review == "diff" else None,
    )


def coding_agent_unavailable(kind: str, settings: Settings) -> ApiError:
    available = sorted(settings.coding_agent_kinds)
    return ApiError(
        400,
        "coding_agent_unavailable",
        "validation",
        f"Coding agent {kind!r} is not available here"
        + (f"; this server's: {', '.join(available)}." if available else " (FORGEFLOW_CODING_AGENT is not set)."),
        details={"field": "agent.coding_agent", "available": available},
    )


def chosen_coding_agent(options: AgentOptions, settings: Settings) -> CodingAgentKind | None:
    """The kind that builds the plan: the one asked for, if the server allows it, else the
    server's default (None: the template's modules, part 1)."""
    if options.coding_agent is None:
        return settings.coding_agent
    if options.coding_agent not in settings.coding_agent_kinds:
        raise coding_agent_unavailable(options.coding_agent, settings)
    return options.coding_agent


def retried_agent_mode(project: Project, settings: Settings) -> AgentMode | None:
    """A retry's agent mode: the project's brief and budget (as POST /budget left it), with
    the model configured now; refused, as a create would be, without a provider."""
    if project.agent is None:
        return None
    stored = AgentMode.model_validate(project.agent)
    return stored.model_copy(update={"model": configured_model(settings)})


def typed_answers(
    answers: Mapping[str, Any], asked: Mapping[str, Mapping[str, Any]], *, max_text: int
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Answers to a model's own questions (``asked``: the stored questions by id), each held
    to its question's type: a boolean takes true/false or "y"/"n" (as a template's yes/no
    does) and is kept as true/false, a single choice one of its options, a text a string of
    at most ``max_text`` characters. The clean answers, and every problem."""
    clean: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, value in answers.items():
        question = asked[name]
        kind = question.get("type")
        if kind == "boolean":
            if isinstance(value, bool) or value in YES_NO:
                clean[name] = value if isinstance(value, bool) else value == "y"
            else:
                problems.append((name, 'must be true, false, "y" or "n"'))
        elif kind == "single_choice":
            options = [str(option) for option in question.get("options") or []]
            if isinstance(value, str) and value in options:
                clean[name] = value
            else:
                problems.append((name, f"must be one of {', '.join(options)}"))
        elif not isinstance(value, str):
            problems.append((name, "must be a string"))
        elif len(value) > max_text:
            problems.append((name, f"must have at most {max_text} characters"))
        else:
            clean[name] = value
    return clean, problems


def answer_text_limit(settings: Settings) -> int:
    # A model reads the answer: no longer than a brief may be (FORGEFLOW_LLM_MAX_BRIEF_CHARS).
    return min(MAX_TEXT, settings.llm_max_brief_chars)
