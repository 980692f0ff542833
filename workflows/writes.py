"""Status writes a run hands to the activity whose result they carry.

The run builds the write as it would have stored it itself (its sequence number, its
events in order, with their keys), less what only the activity learns; the activity
completes it with the functions here and stores it before it returns. The run then takes
the stored write as its new state. Both sides use these functions, so the payloads are
the same whichever side made them."""

from __future__ import annotations

from typing import Any

from workflows.types import (
    ArtifactRef,
    EventRecord,
    ExportResult,
    PlanResult,
    ProjectionInput,
    SpecRecord,
    SpecResult,
    TemplateRequest,
    VerifyResult,
)


def plan_created_payload(plan: PlanResult) -> dict[str, Any]:
    return {"tasks": len(plan.tasks), "merge_order": plan.merge_order}


def export_completed_payload(exported: ExportResult) -> dict[str, Any]:
    return {**exported.artifact.model_dump(), "files": exported.files, "main_sha": exported.main_sha}


def project_ready_payload(artifact: ArtifactRef) -> dict[str, Any]:
    return {"sha256": artifact.sha256, "size": artifact.size}


def spec_record(spec: SpecResult, request: TemplateRequest, feedback: list[str]) -> SpecRecord:
    return SpecRecord(
        version=spec.version, documents_key=spec.documents_key, answers=request.answers, feedback=feedback
    )


def _filled(events: list[EventRecord], payloads: dict[str, dict[str, Any]]) -> list[EventRecord]:
    """The events, with the payload of each type named in ``payloads`` set."""
    return [e.model_copy(update={"payload": payloads[e.type]}) if e.type in payloads else e for e in events]


def completed_tasks_write(
    write: ProjectionInput, request: TemplateRequest, spec: SpecResult, plan: PlanResult, feedback: list[str]
) -> ProjectionInput:
    """The write that enters the tasks phase: the spec on record, the plan and its event."""
    return write.model_copy(
        update={
            "spec": spec_record(spec, request, feedback),
            "plan": plan,
            "events": _filled(write.events, {"plan_created": plan_created_payload(plan)}),
        }
    )


def completed_ready_write(write: ProjectionInput, verified: VerifyResult, exported: ExportResult) -> ProjectionInput:
    """The write that makes the project ready: its verification, its artifact and their events."""
    payloads = {
        "verification_completed": verified.model_dump(mode="json"),
        "export_completed": export_completed_payload(exported),
        "project_ready": project_ready_payload(exported.artifact),
    }
    return write.model_copy(
        update={"verification": verified, "artifact": exported.artifact, "events": _filled(write.events, payloads)}
    )
