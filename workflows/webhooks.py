"""A run's webhook deliveries, and the relay that finishes the ones a run ends before.

Each status change goes to the project's webhook from an activity of its run's, in the
background, retried for about a day. A run that has ended waits for its deliveries a short
while (``webhook_grace_seconds``); those still retrying then go on in a workflow of their
own, ``WebhookRelayWorkflow``, which the run starts and abandons: a receiver that is down
never keeps the project's run open, where it would refuse the next one (a retry, an
update) as "already in progress"."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from workflows.failures import describe
    from workflows.types import DELIVER_WEBHOOK, WebhookDelivery, WebhookRelayInput, WebhookResult

# Receivers get about a day of retries, backing off to hourly.
WEBHOOK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(hours=1), maximum_attempts=30
)


async def deliver_webhook(delivery: WebhookDelivery) -> None:
    """One delivery, retried by Temporal; one that fails for good is logged, never raised:
    a receiver never fails a project."""
    try:
        await workflow.execute_activity(
            DELIVER_WEBHOOK,
            delivery,
            result_type=WebhookResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=WEBHOOK_RETRY,
            summary=f"webhook: {delivery.payload['status']}",
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            return  # handed on to a WebhookRelayWorkflow by the run, which has ended
        workflow.logger.warning("webhook %s not delivered: %s", delivery.webhook_id, describe(exc))


def relay_id(project_workflow_id: str, run_number: int) -> str:
    return f"{project_workflow_id}-webhooks-run-{run_number}"


@workflow.defn
class WebhookRelayWorkflow:
    """The deliveries a run ended before, each sent again from its first try: the same
    webhook-id and body, so a receiver that took an earlier try deduplicates it."""

    @workflow.run
    async def run(self, input: WebhookRelayInput) -> None:
        workflow.set_current_details(
            f"Delivering {len(input.deliveries)} status change(s) of project {input.deliveries[0].project_id} "
            f"to its webhook, each tried up to {WEBHOOK_RETRY.maximum_attempts} times."
        )
        await workflow.wait([asyncio.create_task(deliver_webhook(d)) for d in input.deliveries])
