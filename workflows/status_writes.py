"""The payloads and records of a run's status writes, pure: the workflow's StatusWriter
builds writes with them, and the activities that store a write with their own result (the
preparation's tasks-phase write, verify-and-export's ready write) complete it with the same
functions (``completed_tasks_write``, ``completed_ready_write``)."""

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
from workflows.update_types import RunCommits


def plan_created_payload(plan: PlanResult) -> dict[str, Any]:
    return {"tasks": len(plan.tasks), "merge_order": plan.merge_order}


def export_completed_payload(exported: ExportResult) -> dict[str, Any]:
    payload = {**exported.artifact.model_dump(), "files": exported.files, "main_sha": exported.main_sha}
    if exported.base_sha is not None:  # an update: the commit it went on top of
        payload["base_sha"] = exported.base_sha
    return payload


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
    commits = RunCommits(bundle_key=exported.repository.key, head=exported.main_sha, base=exported.base_sha)
    return write.model_copy(
        update={
            "verification": verified,
            "artifact": exported.artifact,
            "commits": commits,
            "events": _filled(write.events, payloads),
        }
    )
