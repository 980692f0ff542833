"""Structured logs: JSON lines with the request, project, workflow and run; no API key or
webhook secret in any line, whatever form it came in, over real HTTP and in `forgeflow api`."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio import activity, workflow
from temporalio.testing import ActivityEnvironment

from api.request_context import request_id_var
from forgeflow.logs import JsonFormatter, RedactFilter, TextFormatter, configure_logging, redact
from forgeflow.ports import free_port

KEY = "ff_" + "k3Y" * 14  # the shape of a real key: ff_ + 43 url-safe characters
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Capture(io.StringIO):
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


@pytest.fixture
def captured() -> Iterator[Capture]:
    """A handler configured as `configure_logging` configures it, on the root logger."""
    stream = Capture()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_json_line_has_the_fields_and_the_request_id(captured: Capture):
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("forgeflow.test").warning("hello %s", "world", extra={"status": 201})
    finally:
        request_id_var.reset(token)
    (line,) = captured.lines()
    assert line["level"] == "WARNING" and line["logger"] == "forgeflow.test"
    assert line["message"] == "hello world" and line["request_id"] == "req-42" and line["status"] == 201
    assert line["timestamp"].endswith("+00:00")
    assert "project_id" not in line and "workflow_id" not in line


@pytest.mark.parametrize(
    "message",
    [
        f"GET /api/v1/projects?api_key={KEY}&limit=1",
        f"headers: {{'x-api-key': '{KEY}'}}",
        f"[(b'authorization', b'Bearer {KEY}')]",
        f"Authorization: Api-Key {KEY}",
        f"X-API-Key={KEY}",
        f'{{"api_key": "{KEY}"}}',
        f"the key {KEY} leaked",
        f"secret {SECRET} rotated",
    ],
)
def test_secrets_never_reach_a_line(captured: Capture, message: str):
    log = logging.getLogger("forgeflow.test")
    log.info(message)
    log.info("as an argument: %s", message)
    log.info("as an extra", extra={"detail": message, "nested": {"list": [message]}})
    try:
        raise RuntimeError(message)
    except RuntimeError:
        log.exception("failed")
    text = captured.getvalue()
    assert KEY not in text and SECRET not in text and KEY[3:20] not in text
    assert "[REDACTED]" in text
    assert len(captured.lines()) == 4


def test_redaction_keeps_the_rest():
    assert redact("GET /api/v1/projects/7/status 200") == "GET /api/v1/projects/7/status 200"
    assert redact(f"/x?limit=5&api_key={KEY}&offset=2") == "/x?limit=5&api_key=[REDACTED]&offset=2"
    assert redact("schema ff_test_0123456789 and ff_short") == "schema ff_test_0123456789 and ff_short"
    assert redact("authorization failed for x-api-key header") == "authorization failed for x-api-key header"


def test_inside_an_activity_the_workflow_and_project_are_known(captured: Capture):
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="project-42", workflow_run_id="run-9", activity_type="verify")

    def work() -> None:
        activity.logger.info("verifying")
        logging.getLogger("forgeflow.engine").info("plain logger, same context")

    env.run(work)
    for line in captured.lines():
        assert line["workflow_id"] == "project-42" and line["run_id"] == "run-9", line
        assert line["project_id"] == 42 and line["activity"] == "verify" and line["attempt"] == 1


def test_workflow_logger_details_are_used(captured: Capture):
    details = {"workflow_id": "project-7", "run_id": "r-1", "workflow_type": "ProjectGenerationWorkflow"}
    logging.getLogger("temporalio.workflow").info("phase", extra={"temporal_workflow": details})
    (line,) = captured.lines()
    assert (line["project_id"], line["workflow_id"], line["run_id"]) == (7, "project-7", "r-1")
    assert "temporal_workflow" not in line


def test_text_format_is_redacted_too():
    record = logging.LogRecord("forgeflow.x", logging.INFO, __file__, 1, "key=%s api_key=%s", (KEY, KEY), None)
    record.project_id = 3
    line = TextFormatter().format(record)
    assert KEY not in line and "[project_id=3]" in line and "INFO forgeflow.x" in line


def test_configure_logging_installs_json_and_keeps_the_sdk_context_off_the_message():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, activity.logger.activity_info_on_message)
    saved_wf = workflow.logger.workflow_info_on_message
    try:
        config = configure_logging("DEBUG", "json")
        assert config["handlers"]["stderr"]["filters"] == ["redact"]
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonFormatter) and root.level == logging.DEBUG
        assert any(isinstance(f, RedactFilter) for f in handler.filters)
        assert activity.logger.activity_info_on_message is False
        assert workflow.logger.workflow_info_on_message is False
        configure_logging("INFO", "text")
        assert isinstance(root.handlers[0].formatter, TextFormatter)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        activity.logger.activity_info_on_message = saved[2]
        workflow.logger.workflow_info_on_message = saved_wf


async def test_access_log_over_http_has_the_request_and_never_the_key(captured: Capture, api, http, make_key):
    key = make_key().key
    sent = [
        await http.get("/projects", params={"api_key": key, "limit": 1}, headers={"X-Request-ID": "acc-1"}),
        await http.get("/projects/1234567", headers={"X-API-Key": key}),
        await http.get("/projects", headers={"Authorization": f"Bearer {key}"}),
        await http.get(f"/projects?api_key={key}x"),  # a bad key: 401, still not logged
    ]
    assert [r.status_code for r in sent] == [200, 404, 200, 401]
    assert key not in captured.getvalue() and key[3:20] not in captured.getvalue()
    access = [line for line in captured.lines() if line["logger"] == "forgeflow.access"]
    by_id = {line["request_id"]: line for line in access}
    first = by_id["acc-1"]
    assert first["path"] == "/api/v1/projects" and first["route"] == "/api/v1/projects"
    assert first["method"] == "GET" and first["status"] == 200 and first["duration_ms"] >= 0
    assert "?" not in first["message"] and isinstance(first["owner_id"], int)
    missing = by_id[sent[1].headers["x-request-id"]]
    assert missing["route"] == "/api/v1/projects/{project_id}" and missing["project_id"] == 1234567
    assert by_id[sent[3].headers["x-request-id"]]["status"] == 401


def test_forgeflow_api_writes_json_lines_without_keys(settings, make_key, tmp_path):
    key, port = make_key().key, free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
    env |= {
        "FORGEFLOW_DATA_DIR": str(settings.data_dir),
        "FORGEFLOW_DATABASE_URL": settings.resolved_database_url,
        "FORGEFLOW_TEMPORAL_ADDRESS": settings.resolved_temporal_address,
        "FORGEFLOW_NAMESPACE": settings.namespace,
        "FORGEFLOW_LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "forgeflow", "api", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=f"{base}/api/v1") as client:
            assert client.get("/projects", params={"api_key": key}).status_code == 200
            assert client.get("/projects", headers={"Authorization": f"Token {key}"}).status_code == 200
            ok = client.get("/projects", headers={"X-API-Key": key, "X-Request-ID": "cli-1"})
            assert ok.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = log_path.read_text()
    assert key not in text and key[3:20] not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(line["logger"].startswith("uvicorn") for line in lines), text  # uvicorn's own lines, as JSON
    access = [line for line in lines if line["logger"] == "forgeflow.access"]
    assert len(access) == 3 and all("?" not in line["message"] for line in access)
    assert any(line.get("request_id") == "cli-1" and line["status"] == 200 for line in access)
    assert not any(line["logger"] == "uvicorn.access" for line in lines)
