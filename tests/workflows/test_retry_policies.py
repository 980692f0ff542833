"""How long the steps of a run retry: what the template got wrong fails at once (non-retryable
errors), anything else — a worker lost, the database or the artifact store unreachable — is
retried until it is back, for up to OUTAGE_PATIENCE, so an outage delays a run and
never fails it, while a step that keeps failing for another reason still fails it in the end."""

from __future__ import annotations

from datetime import timedelta

from workflows.status import PROJECTION_RETRY
from workflows.steps import ENGINE_RETRY, OUTAGE_PATIENCE
from workflows.tasks import TASK_RETRY


def test_steps_tasks_and_status_writes_retry_without_an_attempt_limit():
    for policy in (ENGINE_RETRY, TASK_RETRY, PROJECTION_RETRY):
        assert policy.maximum_attempts == 0, policy  # 0: unlimited
        assert policy.maximum_interval is not None and policy.maximum_interval <= timedelta(seconds=30)
    assert timedelta(minutes=30) <= OUTAGE_PATIENCE <= timedelta(hours=6)
