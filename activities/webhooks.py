"""The webhook delivery activity, per Standard Webhooks (standardwebhooks.com).

One POST per attempt, JSON ``{"type", "timestamp", "data"}``, signed with the owner's
secret: ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``. The
workflow fixes the id and the body; ``webhook-timestamp`` is the send time, so a receiver
can reject replays. Redirects are never followed; the URL passes the SSRF guard again at
send time, and the request goes to an address the guard checked (no second lookup)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, timedelta

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from forgeflow import __version__
from forgeflow.netguard import (
    CheckedURL,
    UnresolvableHostError,
    WebhookURLError,
    parse_ip_literal,
    resolve_webhook_url,
)
from store.db import Database
from store.webhooks import SecretCipher, SecretKeyError, load_webhook_secret, secret_key_bytes
from workflows.types import DELIVER_WEBHOOK, WebhookDelivery, WebhookResult

RETRYABLE_4XX = frozenset({408, 429})
MAX_RETRY_AFTER = 3600.0
USER_AGENT = f"forgeflow-webhooks/{__version__}"


def permanent(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def retryable(message: str, kind: str, delay: float | None = None) -> ApplicationError:
    next_delay = timedelta(seconds=delay) if delay is not None else None
    return ApplicationError(message, type=kind, non_retryable=False, next_retry_delay=next_delay)


def webhook_body(delivery: WebhookDelivery) -> bytes:
    """The same bytes on every attempt: the workflow chose the timestamp and the payload."""
    at = delivery.timestamp if delivery.timestamp.tzinfo else delivery.timestamp.replace(tzinfo=UTC)
    envelope = {
        "type": delivery.event_type,
        "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": delivery.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>``: HMAC-SHA256 keyed with the secret's bytes over ``{id}.{timestamp}.{body}``."""
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return min(float(value), MAX_RETRY_AFTER) if value.isdigit() and int(value) > 0 else None


class WebhookActivities:
    def __init__(
        self,
        db: Database,
        cipher: SecretCipher,
        *,
        allow_private: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._allow_private = allow_private
        self._timeout = timeout

    def _secret(self, owner_id: int) -> str:
        try:
            with self._db.session() as session:
                secret = load_webhook_secret(session, owner_id=owner_id, cipher=self._cipher)
        except SecretKeyError as exc:
            raise permanent(str(exc), "WebhookSecretUndecryptable") from exc
        if secret is None:
            raise permanent("owner has no webhook secret", "WebhookSecretMissing")
        return secret

    def _target(self, url: str) -> CheckedURL:
        try:
            return resolve_webhook_url(url, allow_private=self._allow_private)
        except UnresolvableHostError as exc:
            raise retryable(str(exc), "WebhookHostUnresolvable") from exc
        except WebhookURLError as exc:
            raise permanent(str(exc), "UnsafeWebhookURL") from exc

    def _send(self, target: CheckedURL, headers: dict[str, str], body: bytes) -> httpx.Response:
        """POST to the first checked address that accepts a connection; the Host header and
        TLS server name stay the URL's. The body of the answer is never read."""
        url = httpx.URL(target.url)
        headers = {**headers, "host": url.netloc.decode("ascii")}
        named = parse_ip_literal(target.host) is None
        extensions = {"sni_hostname": target.host} if target.scheme == "https" and named else {}
        with httpx.Client(timeout=self._timeout, follow_redirects=False, trust_env=False) as client:
            failure: httpx.ConnectError | None = None
            for address in target.addresses:
                request = client.build_request(
                    "POST", url.copy_with(host=str(address)), content=body, headers=headers, extensions=extensions
                )
                try:
                    response = client.send(request, stream=True)
                except httpx.ConnectError as exc:
                    failure = exc
                    continue
                response.close()
                return response
            assert failure is not None
            raise failure

    @activity.defn(name=DELIVER_WEBHOOK)
    def deliver_webhook(self, input: WebhookDelivery) -> WebhookResult:
        attempt = activity.info().attempt
        secret = self._secret(input.owner_id)
        target = self._target(input.url)
        body = webhook_body(input)
        headers = signed_headers(secret, input.webhook_id, int(time.time()), body)
        activity.heartbeat(attempt)
        try:
            response = self._send(target, headers, body)
        except httpx.HTTPError as exc:
            raise retryable(f"webhook delivery failed: {type(exc).__name__}: {exc}", "WebhookUnreachable") from exc
        status = response.status_code
        if 200 <= status < 300:
            activity.logger.info("webhook %s delivered: %s (attempt %d)", input.webhook_id, status, attempt)
            return WebhookResult(status_code=status, attempts=attempt)
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            message = f"webhook receiver answered {status} (redirect to {location!r}, not followed)"
            raise permanent(message, "WebhookRedirect")
        if 400 <= status < 500 and status not in RETRYABLE_4XX:
            raise permanent(f"webhook receiver refused the delivery: {status}", "WebhookRejected")
        raise retryable(f"webhook receiver answered {status}", "WebhookFailed", _retry_after(response))
