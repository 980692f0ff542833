"""The three phase agents (clarify, spec, plan), made durable with Pydantic AI's Temporal
integration: every model request is an activity of its own, retried by Temporal with
backoff a bounded number of times, and on replay its recorded response is reused, never
sent again.

``TemporalDurability`` on a plain ``Agent`` is the integration's current form
(``TemporalAgent`` is its deprecated wrapper, with the same activity names). An agent with
it must be built outside any workflow, and its model comes from the worker's settings, so
each worker builds its agents at start (``install``) and the phase workflow, which imports
this module passed through, finds them there (``installed``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic_ai import Agent, ModelRetry, ToolOutput
from pydantic_ai.durable_exec.temporal import TemporalDurability
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig

from agents.plan_rules import plan_errors
from agents.prompts import INSTRUCTIONS
from agents.provider import LlmConfig, chat_model
from agents.schemas import ClarifyOutput, PlanOutput, SpecOutput
from agents.types import AgentPhase

# Time a request's activity may take beyond the client's own timeout (heartbeats, decoding).
ACTIVITY_MARGIN = timedelta(seconds=30)


def durability(config: LlmConfig) -> TemporalDurability[None]:
    """Model requests as activities: timeouts, 429s and 5xx are retried by Temporal with
    exponential backoff, ``llm_max_attempts`` attempts in all; a worker that dies mid-request
    is noticed within the heartbeat timeout and the request alone is sent again."""
    return TemporalDurability(
        model_activity_config=ActivityConfig(
            start_to_close_timeout=timedelta(seconds=config.request_timeout_seconds) + ACTIVITY_MARGIN,
            heartbeat_timeout=timedelta(seconds=config.heartbeat_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=60),
                maximum_attempts=config.max_attempts,
            ),
        ),
    )


@dataclass(frozen=True)
class PhaseAgents:
    config: LlmConfig
    clarify: Agent[None, ClarifyOutput]
    spec: Agent[None, SpecOutput]
    plan: Agent[None, PlanOutput]

    def for_phase(self, phase: AgentPhase) -> Agent[None, Any]:
        agents: dict[AgentPhase, Agent[None, Any]] = {
            AgentPhase.CLARIFY: self.clarify,
            AgentPhase.SPEC: self.spec,
            AgentPhase.PLAN: self.plan,
        }
        return agents[phase]

    @property
    def activities(self) -> list[Any]:
        """The model-request activities of the three agents, for the worker to register."""
        found: list[Any] = []
        for agent in (self.clarify, self.spec, self.plan):
            capability = TemporalDurability.from_agent(agent)
            assert capability is not None
            found += capability.temporal_activities
        return found


def build_phase_agents(config: LlmConfig) -> PhaseAgents:
    model = chat_model(config)

    def agent(phase: AgentPhase, output: ToolOutput[Any]) -> Agent[None, Any]:
        # The name is part of every activity's name: never change it while runs are in flight.
        return Agent(
            model,
            name=f"forgeflow_{phase.value}",
            instructions=INSTRUCTIONS[phase],
            output_type=output,
            retries={"output": config.output_retries},
            capabilities=[durability(config)],
        )

    clarify = agent(AgentPhase.CLARIFY, ToolOutput(ClarifyOutput, name="submit_questions"))
    spec = agent(AgentPhase.SPEC, ToolOutput(SpecOutput, name="submit_spec"))
    plan = agent(AgentPhase.PLAN, ToolOutput(PlanOutput, name="submit_plan"))

    @plan.output_validator
    async def valid_plan(output: PlanOutput) -> PlanOutput:
        # Runs in workflow code (pure): an invalid plan goes back to the model with every
        # error at once, within the output retries; past them the phase fails.
        errors = plan_errors(output)
        if errors:
            raise ModelRetry(
                "The plan breaks these rules; fix all of them and submit it again:\n- " + "\n- ".join(errors)
            )
        return output

    return PhaseAgents(config=config, clarify=clarify, spec=spec, plan=plan)


# One provider per worker process, as there is one set of settings: the agents the worker
# built at start. Workflow code reads it (this module is passed through the sandbox), also
# on replay; a worker without a provider has none, and a phase scheduled there fails its
# workflow task until a worker with one takes it.
_installed: PhaseAgents | None = None


def install(agents: PhaseAgents) -> None:
    global _installed
    _installed = agents


def installed() -> PhaseAgents:
    if _installed is None:
        raise LookupError("no model provider on this worker: set FORGEFLOW_LLM_BASE_URL, _API_KEY and _MODEL")
    return _installed
