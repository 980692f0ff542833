"""The agent phase's own activities, around the model requests: build the prompt (the
client's text as data, with what the template says), record each completed request's
usage (idempotent), and store the phase's output where the template path stores its own."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.base import TemplateActivities, as_json, permanent
from agents.budget import spend_of
from agents.change_phase import change_data, change_prompt, changed_spec
from agents.plan_rules import to_plan_result
from agents.prompts import INSTRUCTIONS, ClientTextTooLong, check_client_text, sha256, user_prompt
from agents.provider import LlmConfig
from agents.schemas import ClarifyOutput, SpecOutput
from agents.spend import priced_usage, recorded_spend
from agents.tasks_md import tasks_markdown
from agents.types import (
    PREPARE_AGENT_PHASE,
    RECORD_AGENT_REQUEST,
    STORE_AGENT_OUTPUT,
    AgentPhase,
    AgentPhaseInput,
    PhaseStart,
    RecordedRequest,
    RecordRequestInput,
    Reproducibility,
    RequestUsage,
    Spend,
    StoredOutput,
    StoredPhaseOutput,
    StoreOutputInput,
)
from engine import EngineError
from engine.plan import decompose
from engine.questions import questions_for
from engine.spec import SPEC_DOCUMENTS
from engine.templates import Template
from store.db import Database
from store.usage import project_spend
from workflows.types import QuestionModel, SpecResult, TemplateRequest


class AgentActivities(TemplateActivities):
    def __init__(self, db: Database, config: LlmConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._db = db
        self._config = config

    @activity.defn(name=PREPARE_AGENT_PHASE)
    def prepare_agent_phase(self, input: AgentPhaseInput) -> PhaseStart:
        try:
            check_client_text(input, max_chars=self._config.max_brief_chars)
        except ClientTextTooLong as exc:
            raise permanent(str(exc), "ClientTextTooLong") from exc
        if input.change is not None and len(input.change.prompt) > self._config.max_brief_chars:
            raise permanent(
                f"the change request has {len(input.change.prompt)} characters; at most "
                f"{self._config.max_brief_chars} are allowed (FORGEFLOW_LLM_MAX_BRIEF_CHARS)",
                "ClientTextTooLong",
            )
        template = self._template(self._request(input))
        data = self._phase_data(input, template)
        prompt = user_prompt(input.phase, data) if input.change is None else change_prompt(input.phase, data)
        config = self._config
        return PhaseStart(
            prompt=prompt,
            spent=self._spend(input.project_id),
            reproducibility=Reproducibility(
                model=config.model,
                base_url_host=config.base_url_host,
                temperature=config.temperature,
                seed=config.seed,
                instructions_sha256=sha256(INSTRUCTIONS[input.phase]),
                prompt_sha256=sha256(prompt),
            ),
        )

    @activity.defn(name=RECORD_AGENT_REQUEST)
    def record_agent_request(self, input: RecordRequestInput) -> RecordedRequest:
        """Price the request and store it with its ``agent_request_completed`` event. Keyed by
        the request: a retried activity stores nothing twice and answers the same."""
        return self._record(input)

    @activity.defn(name=STORE_AGENT_OUTPUT)
    def store_agent_output(self, input: StoreOutputInput) -> StoredPhaseOutput:
        """The request that gave the output on record first (as ``record_agent_request``
        records it: a retry records it once), then the output, its reproducibility record
        listing every request: one step a phase fewer than recording it on its own."""
        reproducibility, recorded = input.reproducibility, None
        if input.last_request is not None:
            recorded = self._record(input.last_request)
            requests = [*reproducibility.requests, recorded.usage]
            reproducibility = reproducibility.model_copy(
                update={"requests": requests, "models_answering": sorted({r.model for r in requests})}
            )
        return StoredPhaseOutput(output=self._store_output(input, reproducibility), last_request=recorded)

    # --- helpers ---------------------------------------------------------------------------

    def _record(self, input: RecordRequestInput) -> RecordedRequest:
        row = priced_usage(self._config, input, phase=input.phase.value)
        spent = recorded_spend(self._db, row)
        recorded = RequestUsage(
            number=input.number,
            model=input.model,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            total_tokens=row.total_tokens,
            cost_usd=row.cost_usd,
        )
        return RecordedRequest(usage=recorded, spent=spent)

    def _store_output(self, input: StoreOutputInput, reproducibility: Reproducibility) -> StoredOutput:
        request = input.request
        base = self._run_prefix(self._request(request))
        record = as_json(reproducibility.model_dump(mode="json")).encode()
        if input.questions is not None:
            key = f"{base}/agent/clarify/questions.json"
            questions = as_questions(input.questions)
            self._artifacts.put_bytes(key, as_json([q.model_dump(mode="json") for q in questions]).encode())
            self._artifacts.put_bytes(f"{base}/agent/clarify/reproducibility.json", record)
            return StoredOutput(key=key, questions=questions)
        if input.spec is not None:
            prefix = f"{base}/spec/v{request.version}"
            documents = spec_documents(input.spec, request)
            digests = {
                name: self._artifacts.put_bytes(f"{prefix}/{name}", text.encode()).sha256
                for name, text in documents.items()
            }
            self._artifacts.put_bytes(f"{prefix}/reproducibility.json", record)
            return StoredOutput(
                key=prefix, spec=SpecResult(version=request.version, documents_key=prefix, digests=digests)
            )
        if input.plan is not None:
            # Beside the spec version it was planned from: the review covers both, and the
            # version's record holds tasks.md and plan.json with the four documents.
            prefix = f"{base}/spec/v{request.version}"
            plan_json = as_json(input.plan.model_dump(mode="json"))
            documents = {"tasks.md": tasks_markdown(input.plan), "plan.json": plan_json}
            digests = {
                name: self._artifacts.put_bytes(f"{prefix}/{name}", text.encode()).sha256
                for name, text in documents.items()
            }
            self._artifacts.put_bytes(f"{prefix}/plan-reproducibility.json", record)
            plan = to_plan_result(input.plan, root_name=request.brief.slug)
            # The plan's documents, as a spec's: they join the version's four in its record and export.
            documents_of = SpecResult(version=request.version, documents_key=prefix, digests=digests)
            return StoredOutput(key=f"{prefix}/plan.json", plan=plan, spec=documents_of)
        raise permanent("no output to store", "InvalidInput")

    def _request(self, input: AgentPhaseInput) -> TemplateRequest:
        """The template path's request: the answers that are the template's variables (the
        agent's own questions have ids of their own), the brief answering the project's name,
        slug and description where the template has them."""
        template = self._template(
            TemplateRequest(
                project_id=input.project_id, run_number=input.run_number, template=input.template, answers={}
            )
        )
        brief = input.brief
        given = {"project_name": brief.name, "project_slug": brief.slug, "project_description": brief.description}
        answers = {k: v for k, v in {**given, **input.answers}.items() if k in template.public_variables}
        return TemplateRequest(
            project_id=input.project_id, run_number=input.run_number, template=input.template, answers=answers
        )

    def _spend(self, project_id: int) -> Spend:
        with self._db.session() as session:
            return spend_of(project_spend(session, project_id=project_id))

    def _phase_data(self, input: AgentPhaseInput, template: Template) -> dict[str, Any]:
        request = self._request(input)
        data: dict[str, Any] = {
            "project": input.brief.model_dump(mode="json"),
            "template": {
                "id": template.id,
                "title": template.manifest.title or template.id,
                "description": template.manifest.description,
                "version": template.version,
            },
        }
        try:
            if input.change is not None:  # a run on demand: the change and the spec it changes
                data.update(change_data(input, changed_spec(self._db, input)))
            if input.phase == AgentPhase.CLARIFY:
                data["answers_given"] = input.answers
                if input.change is not None:  # the template's questions were answered with the project
                    return data
                data["template_questions"] = [
                    {k: v for k, v in q.__dict__.items() if k != "required"}
                    for q in questions_for(template, request.answers)
                ]
            elif input.phase == AgentPhase.SPEC:
                context = self._context(template, request)["cookiecutter"]
                data["template_settings"] = {k: context[k] for k in template.public_variables if k in context}
                data["clarifications"] = clarifications(input)
                data["feedback"] = input.feedback
            else:
                data["spec"] = self._spec_documents(input)
                if input.change is not None:  # the template's files are built already
                    return data
                plan = decompose(template, self._context(template, request))
                data["template_plan"] = [
                    {k: getattr(t, k) for k in ("id", "description", "dependencies", "path_scope", "expected_outputs")}
                    for t in plan.tasks
                ]
        except EngineError as exc:
            raise permanent(str(exc), type(exc).__name__) from exc
        return data

    def _spec_documents(self, input: AgentPhaseInput) -> dict[str, str]:
        if not input.spec_key:
            raise permanent("the plan phase needs the approved spec (spec_key)", "InvalidInput")
        documents = {}
        for name in SPEC_DOCUMENTS:
            with self._artifacts.open(f"{input.spec_key}/{name}") as fh:
                documents[name] = fh.read().decode("utf-8")
        return documents


def as_questions(output: ClarifyOutput) -> list[QuestionModel]:
    """The model's questions as the template path's: the recommended answer is the default."""
    return [
        QuestionModel(id=q.id, question=q.question, type=q.type, options=q.options, default=q.recommended, help=q.why)
        for q in output.questions
    ]


def clarifications(input: AgentPhaseInput) -> list[dict[str, Any]]:
    """Each question asked, with the client's answer (or the recommended one, said so)."""
    found = []
    for question in input.questions:
        answered = question.id in input.answers
        found.append(
            {
                "id": question.id,
                "question": question.question,
                "answer": input.answers[question.id] if answered else question.default,
                "answered_by": "client" if answered else "recommended default",
            }
        )
    return found


def _inline(value: Any) -> str:
    text = "yes" if value is True else "no" if value is False else str(value)
    return " ".join(text.split()) or "(empty)"  # one line: a client's answer never makes a heading


def spec_documents(output: SpecOutput, input: AgentPhaseInput) -> dict[str, str]:
    """The model's four documents; SPEC.md ends with the clarifications (each question and its
    answer, logged here rather than left to the model), the review feedback so far and, for a
    run on demand, the change request, quoted as sent."""
    documents = output.documents()
    lines = ["", "## Clarifications", ""]
    items = clarifications(input)
    lines += [
        f"- **{_inline(c['question'])}** (`{c['id']}`): {_inline(c['answer'])}"
        + ("" if c["answered_by"] == "client" else " _(recommended; not answered)_")
        for c in items
    ] or ["No questions were asked."]
    if input.feedback:
        lines += ["", "## Reviewer feedback", ""] + [f"- {_inline(item)}" for item in input.feedback]
    if input.change is not None:
        lines += ["", f"## Change requested (run {input.run_number})", ""]
        lines += [f"> {line}".rstrip() for line in input.change.prompt.splitlines()]
    documents["SPEC.md"] = documents["SPEC.md"].rstrip() + "\n" + "\n".join(lines) + "\n"
    return {name: text if text.endswith("\n") else text + "\n" for name, text in documents.items()}
