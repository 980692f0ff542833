"""forgeflow-fake: a real HTTP server speaking OpenAI's chat-completions protocol
(``POST /v1/chat/completions``, plain and streamed), for tests and ``forgeflow dev``.

It is a fake and says so: every answer names the model ``forgeflow-fake``, carries the
``X-Forgeflow-Fake`` header, and its documents, questions and tasks carry a banner. Every
response reports ``usage``. Tests script it per request (a delay, an HTTP error, malformed
or schema-violating arguments, any output) and read what it received; a request nobody
scripted gets a deterministic answer made from the request itself (agents.fake_answers; a run
on demand's phases, agents.fake_changes; the built-in coding agent's tasks, agents.fake_builtin).

    python -m agents.fake_llm --port 8099     # then FORGEFLOW_LLM_BASE_URL=http://127.0.0.1:8099/v1
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agents.fake_answers import FAKE_MODEL, default_arguments
from agents.fake_builtin import builtin_step
from agents.fake_changes import change_arguments

HEADERS = {"X-Forgeflow-Fake": "true"}
ERRORS = {
    401: ("invalid_api_key", "Incorrect API key provided (scripted by forgeflow-fake)."),
    429: ("rate_limit_exceeded", "Rate limit reached (scripted by forgeflow-fake)."),
    500: ("server_error", "The server had an error (scripted by forgeflow-fake)."),
    503: ("server_error", "The server is overloaded (scripted by forgeflow-fake)."),
}


@dataclass(frozen=True)
class Reply:
    """How the fake answers one request. ``arguments``: the output tool's arguments, a dict
    (sent as JSON) or a string sent as is (malformed JSON, say); None: the default answer."""

    status: int = 200
    arguments: dict[str, Any] | str | None = None
    delay: float = 0.0  # seconds before answering
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens; None: counted from the text
    tool: str | None = None  # the tool to call, by name; None: the output tool (submit_*), else the first


@dataclass
class Received:
    body: dict[str, Any]
    digest: str  # of the whole request: the same request sent again has the same digest
    status: int = 0  # what was answered (0: not yet; -1: the client hung up first)
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Every message's text, as the model would read it."""
        return "\n".join(str(m.get("content") or "") for m in self.body.get("messages", []))


class FakeLlm:
    def __init__(self, *, keep: int | None = None, delay: float = 0.0, plan: dict[str, Any] | None = None) -> None:
        self.replies: deque[Reply] = deque()
        self.delay = delay  # of every unscripted answer: a model's latency, for the benchmark
        self.plan = plan  # the plan every unscripted plan request gets (a benchmark's shape)
        self.received: list[Received] = []
        self._keep = keep  # how many received requests to remember (None: all, as tests read them)
        self.count = 0  # requests received in all
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def answered(self) -> list[Received]:
        """The requests answered with a completion (not an error)."""
        return [r for r in self.received if r.status == 200]

    def reported_tokens(self) -> tuple[int, int]:
        """(prompt, completion) tokens over every completion the fake sent."""
        return (
            sum(r.usage.get("prompt_tokens", 0) for r in self.answered),
            sum(r.usage.get("completion_tokens", 0) for r in self.answered),
        )

    async def __aenter__(self) -> FakeLlm:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        # A request still sleeping (its client killed) does not hold the shutdown up.
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        received = Received(body=body, digest=hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest())
        self.received.append(received)
        self.count += 1
        if self._keep is not None:
            del self.received[: -self._keep]
        reply = self.replies.popleft() if self.replies else Reply(delay=self.delay)
        if reply.delay and not await _pause(request, reply.delay):
            received.status = -1  # the client hung up first (a killed worker): nothing was answered
            return Response(status_code=499)
        received.status = reply.status
        if reply.status != 200:
            kind, said = ERRORS.get(reply.status, ("server_error", f"HTTP {reply.status} (scripted)"))
            error = {"error": {"message": said, "type": kind, "code": kind}}
            return JSONResponse(error, status_code=reply.status, headers=HEADERS)
        tools = [t["function"]["name"] for t in body.get("tools", [])]
        tool = reply.tool or next((t for t in tools if t.startswith("submit_")), tools[0] if tools else None)
        arguments = reply.arguments
        builtin = builtin_step(tools, body) if reply.tool is None and arguments is None else None
        if builtin is not None:  # the built-in coding agent's task (agents.fake_builtin)
            tool, arguments = builtin
        if arguments is None:
            arguments = change_arguments(tool, body)  # a run on demand's phases (agents.fake_changes)
        if arguments is None:
            arguments = self.plan if tool == "submit_plan" and self.plan else default_arguments(tool, body)
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        prompt, completion = reply.usage or (_tokens(json.dumps(body.get("messages", []))), _tokens(text))
        received.usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if tool is None:
            message["content"] = text
        else:
            call = {
                "id": f"call_{self.count}",
                "type": "function",
                "function": {"name": tool, "arguments": text},
            }
            message["tool_calls"] = [call]
        if body.get("stream"):
            return StreamingResponse(_stream(message, received.usage), media_type="text/event-stream", headers=HEADERS)
        completion_body = {
            "id": f"chatcmpl-fake-{self.count}",
            "object": "chat.completion",
            "created": 0,
            "model": FAKE_MODEL,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop", "logprobs": None}
            ],
            "usage": received.usage,
        }
        return JSONResponse(completion_body, headers=HEADERS)


async def _pause(request: Request, seconds: float) -> bool:
    """Wait ``seconds``; False as soon as the client is gone."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        if await request.is_disconnected():
            return False
        await asyncio.sleep(min(0.05, left))
    return True


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))  # about four characters a token


async def _stream(message: dict[str, Any], usage: dict[str, int]) -> AsyncIterator[str]:
    """The same answer as server-sent events: the message, the finish reason, the usage."""
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": FAKE_MODEL}
    delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
    if "tool_calls" in message:
        delta["tool_calls"] = [{"index": 0, **call} for call in message["tool_calls"]]
    finish = "tool_calls" if "tool_calls" in message else "stop"
    for choices, extra in (
        ([{"index": 0, "delta": delta, "finish_reason": None}], {}),
        ([{"index": 0, "delta": {}, "finish_reason": finish}], {}),
        ([], {"usage": usage}),
    ):
        yield f"data: {json.dumps({**base, 'choices': choices, **extra})}\n\n"
    yield "data: [DONE]\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="forgeflow-fake: a scripted stand-in for an OpenAI-compatible model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer (a model's latency)")
    parser.add_argument("--plan", type=Path, help="a JSON plan ({'tasks': [...]}) to answer every plan request with")
    args = parser.parse_args()
    plan = json.loads(args.plan.read_text()) if args.plan else None
    print(f"forgeflow-fake (not a real model) at http://{args.host}:{args.port}/v1", flush=True)
    fake = FakeLlm(keep=100, delay=args.delay, plan=plan)
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
