"""The webhook delivery activity against a real local HTTP receiver; every signature is
checked with the independent ``standardwebhooks`` verifier from PyPI."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.webhooks import WebhookActivities
from store.db import Database
from store.webhooks import issue_webhook_secret, load_cipher
from workflows.types import DELIVER_WEBHOOK, WebhookDelivery, WebhookResult


class Receiver:
    """Records every request; answers from a script of (status, headers), then 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_GET = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def cipher(tmp_path):
    return load_cipher(None, tmp_path)


@pytest.fixture
def owner(db: Database, make_key, cipher) -> tuple[int, str]:
    owner_id = make_key().owner_id
    with db.session() as session:
        return owner_id, issue_webhook_secret(session, owner_id=owner_id, cipher=cipher).secret


def delivery(owner_id: int, url: str, **overrides: Any) -> WebhookDelivery:
    fields: dict[str, Any] = {
        "project_id": 7,
        "owner_id": owner_id,
        "url": url,
        "webhook_id": f"msg_{uuid.uuid4().hex}",
        "event_type": "project.status_changed",
        "payload": {"project_id": 7, "status": "ready", "note": "héllo"},
        "timestamp": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    }
    return WebhookDelivery(**{**fields, **overrides})


def attempt(acts: WebhookActivities, input: WebhookDelivery, number: int = 1, beats: list | None = None) -> Any:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=number)
    if beats is not None:
        env.on_heartbeat = lambda *details: beats.append(details)
    return env.run(acts.deliver_webhook, input)


def failure(acts: WebhookActivities, input: WebhookDelivery) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        attempt(acts, input)
    return raised.value


def test_a_2xx_delivery_is_signed_per_standard_webhooks(db, cipher, owner, receiver):
    owner_id, secret = owner
    acts = WebhookActivities(db, cipher, allow_private=True)
    input, beats = delivery(owner_id, receiver.url()), []
    before = int(time.time())
    result = attempt(acts, input, beats=beats)
    assert result == WebhookResult(status_code=200, attempts=1)
    assert beats, "the activity heartbeats before sending"
    [request] = receiver.requests
    headers = request["headers"]
    assert request["method"] == "POST" and request["path"] == "/hook"
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == input.webhook_id
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(request["body"], headers) == {
        "type": "project.status_changed",
        "timestamp": "2026-01-02T03:04:05.678000Z",
        "data": {"project_id": 7, "status": "ready", "note": "héllo"},
    }
    with pytest.raises(Exception, match="signature"):  # another secret does not verify
        Webhook("whsec_" + "A" * 43 + "=").verify(request["body"], headers)


def test_a_5xx_is_retryable(db, cipher, owner, receiver):
    receiver.script = [(500, {})]
    error = failure(WebhookActivities(db, cipher, allow_private=True), delivery(owner[0], receiver.url()))
    assert not error.non_retryable and error.type == "WebhookFailed" and "500" in error.message


@pytest.mark.parametrize("status", [408, 429, 503])
def test_busy_receivers_are_retried_after_their_retry_after(db, cipher, owner, receiver, status):
    receiver.script = [(status, {"Retry-After": "7"})]
    error = failure(WebhookActivities(db, cipher, allow_private=True), delivery(owner[0], receiver.url()))
    assert not error.non_retryable and error.next_retry_delay == timedelta(seconds=7)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_refusing_receiver_is_not_retried(db, cipher, owner, receiver, status):
    receiver.script = [(status, {})]
    error = failure(WebhookActivities(db, cipher, allow_private=True), delivery(owner[0], receiver.url()))
    assert error.non_retryable and error.type == "WebhookRejected" and str(status) in error.message


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_failures_and_never_followed(db, cipher, owner, receiver, status):
    receiver.script = [(status, {"Location": receiver.url("/elsewhere")})]
    error = failure(WebhookActivities(db, cipher, allow_private=True), delivery(owner[0], receiver.url()))
    assert error.non_retryable and error.type == "WebhookRedirect" and "/elsewhere" in error.message
    assert [r["path"] for r in receiver.requests] == ["/hook"]


def test_every_retry_carries_the_same_id_and_body(db, cipher, owner, receiver):
    owner_id, secret = owner
    acts = WebhookActivities(db, cipher, allow_private=True)
    receiver.script = [(503, {}), (502, {})]
    input = delivery(owner_id, receiver.url())
    for number in (1, 2):
        with pytest.raises(ApplicationError):
            attempt(acts, input, number)
    assert attempt(acts, input, 3) == WebhookResult(status_code=200, attempts=3)
    assert len(receiver.requests) == 3
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {input.webhook_id}
    assert len({r["body"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        Webhook(secret).verify(request["body"], request["headers"])


def test_loopback_is_refused_unless_private_addresses_are_allowed(db, cipher, owner, receiver, monkeypatch):
    acts = WebhookActivities(db, cipher, allow_private=False)
    error = failure(acts, delivery(owner[0], receiver.url()))
    assert error.non_retryable and error.type == "UnsafeWebhookURL" and "loopback" in error.message
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: real("127.0.0.1", *a, **k) if host == "hooks.example.com" else real(host, *a, **k),
    )
    error = failure(acts, delivery(owner[0], receiver.url(host="hooks.example.com")))
    assert error.non_retryable and "'hooks.example.com' is 127.0.0.1, a loopback address" in error.message
    assert receiver.requests == []


def test_the_checked_address_is_the_one_connected_to(db, cipher, owner, receiver, monkeypatch):
    """A name that rebinds after the check is never looked up a second time."""
    real, lookups = socket.getaddrinfo, []

    def rebinding(host, *args, **kwargs):
        if host != "rebind.example.com":
            return real(host, *args, **kwargs)
        lookups.append(host)
        if len(lookups) > 1:
            raise AssertionError("looked up twice")
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    acts = WebhookActivities(db, cipher, allow_private=True)
    input = delivery(owner[0], receiver.url(host="rebind.example.com"))
    assert attempt(acts, input).status_code == 200
    assert lookups == ["rebind.example.com"]
    assert receiver.requests[0]["headers"]["host"] == f"rebind.example.com:{receiver.port}"
    Webhook(owner[1]).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])


def test_network_failures_are_retryable(db, cipher, owner):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    error = failure(WebhookActivities(db, cipher, allow_private=True), delivery(owner[0], f"http://127.0.0.1:{port}/"))
    assert not error.non_retryable and error.type == "WebhookUnreachable"


def test_an_owner_without_a_secret_fails_for_good(db, cipher, make_key, receiver):
    error = failure(WebhookActivities(db, cipher, allow_private=True), delivery(make_key().owner_id, receiver.url()))
    assert error.non_retryable and error.message == "owner has no webhook secret"
    assert receiver.requests == []


def test_a_secret_under_another_server_key_fails_clearly(db, owner, receiver, tmp_path):
    other = load_cipher(None, tmp_path / "other")
    error = failure(WebhookActivities(db, other, allow_private=True), delivery(owner[0], receiver.url()))
    assert error.non_retryable and error.type == "WebhookSecretUndecryptable"


@workflow.defn(sandboxed=False)
class DeliverWithRetries:
    @workflow.run
    async def run(self, input: WebhookDelivery) -> WebhookResult:
        return await workflow.execute_activity(
            DELIVER_WEBHOOK,
            input,
            result_type=WebhookResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=5),
        )


async def test_temporal_retries_until_the_receiver_accepts(client: Client, db, cipher, owner, receiver):
    receiver.script = [(500, {}), (429, {"Retry-After": "0"})]
    acts = WebhookActivities(db, cipher, allow_private=True)
    queue = f"tq-{uuid.uuid4().hex[:12]}"
    input = delivery(owner[0], receiver.url())
    with ThreadPoolExecutor(max_workers=2) as executor:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[DeliverWithRetries],
            activities=[acts.deliver_webhook],
            activity_executor=executor,
        ):
            result = await client.execute_workflow(
                DeliverWithRetries.run, input, id=f"webhook-{uuid.uuid4().hex}", task_queue=queue
            )
    assert result == WebhookResult(status_code=200, attempts=3)
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {input.webhook_id}
    for request in receiver.requests:
        assert Webhook(owner[1]).verify(request["body"], request["headers"])["data"] == input.payload
