"""Temporal workflows of forgeflow. Only temporalio, the standard library and the
pass-through types in ``workflows.types`` are imported here."""

TASK_QUEUE = "forgeflow"


def workflow_id_for(project_id: int) -> str:
    return f"project-{project_id}"
