"""A small client for the forgeflow REST API, and the one place its failures become exit codes.

The ``projects`` and ``generate`` commands speak only HTTP: no database, no Temporal."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, ParamSpec, TypeVar

import httpx
import typer

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"

# Exit codes (README: "Scripts: the forgeflow CLI").
EXIT_FAILED = 1  # the project failed or was cancelled; any other API error
EXIT_USAGE = 2  # bad options or arguments (click's own code)
EXIT_NOT_FOUND = 3  # 401, 403, 404: a bad key, a missing scope, an unknown id
EXIT_UNREACHABLE = 4  # connection refused, DNS, timeouts, a dropped connection
EXIT_NOT_DONE = 5  # wait/generate: still running at --timeout, or waiting at a gate

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar=["FORGEFLOW_API_URL", "DJASS_BASE_URL"],
        help="The API, as http://host:port or http://host:port/api/v1.",
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar=["FORGEFLOW_API_KEY", "DJASS_API_KEY"], help="The API key.", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON for scripts.")]


class ApiFailure(Exception):
    """A non-2xx answer, with the error contract's fields."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}

    @classmethod
    def of(cls, response: httpx.Response) -> ApiFailure:
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]), error.get("details") or {})
        except (ValueError, KeyError, TypeError):  # not the API (a proxy, another server)
            return cls(response.status_code, f"http_{response.status_code}", response.reason_phrase or "HTTP error")

    def describe(self) -> str:
        text = f"error: {self.code} (HTTP {self.status}): {self.message}"
        for name in ("field", "current_status", "required_scope", "available", "retry_guidance"):
            if name in self.details:
                value = self.details[name]
                text += f"\n  {name}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
        if "request_id" in self.details:
            text += f"\n  request id: {self.details['request_id']}"
        return text


class Unreachable(Exception):
    """No answer from the API: refused, timed out, or cut off mid-response."""

    def __init__(self, base: str, error: Exception) -> None:
        super().__init__(f"cannot reach the API at {base}: {type(error).__name__}: {str(error) or 'no detail'}")


class CliFailure(Exception):
    """Something the command itself refuses (a checksum mismatch, a file in the way)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def api_base(url: str) -> str:
    """``http://host:port`` or ``http://host:port/api/v1`` (with or without a trailing slash)."""
    base = (url.strip() or DEFAULT_URL).rstrip("/")
    if "://" not in base:
        base = f"http://{base}"
    try:
        parsed = httpx.URL(base)
    except httpx.InvalidURL as exc:
        raise typer.BadParameter(str(exc), param_hint="--api-url") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise typer.BadParameter(f"not an http(s) URL: {url!r}", param_hint="--api-url")
    return base if base.endswith(API_PREFIX) else base + API_PREFIX


class Api:
    def __init__(self, url: str, key: str | None, *, timeout: float = 30.0) -> None:
        self.base = api_base(url)
        self.has_key = bool(key)
        headers = {"Accept": "application/json", "User-Agent": "forgeflow-cli"}
        if key:
            headers["X-API-Key"] = key
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            response.read()
            failure = ApiFailure.of(response)
            if response.status_code == 401 and not self.has_key:
                failure.message += " (no key given: set FORGEFLOW_API_KEY or pass --api-key)"
            raise failure
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._check(self.http.request(method, path, **kwargs))
        except httpx.TransportError as exc:
            raise Unreachable(self.base, exc) from exc

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response; transport errors while reading it are ``Unreachable`` too."""
        try:
            with self.http.stream(method, path, **kwargs) as response:
                yield self._check(response)
        except httpx.TransportError as exc:
            raise Unreachable(self.base, exc) from exc


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise CliFailure(f"error: the API answered {response.url} with something that is not JSON") from exc


def echo_raw(response: httpx.Response) -> None:
    """The API's JSON exactly as it came."""
    typer.echo(response.text.rstrip("\n"))


def parse_pairs(pairs: list[str], *, param_hint: str) -> dict[str, Any]:
    """``key=value`` (a string) or ``key:=JSON`` (any JSON value: true, 3, {"a": 1})."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not key=value (or key:=JSON)", param_hint=param_hint)
        typed = key.endswith(":")
        key = key.removesuffix(":").strip()
        if not key or any(c.isspace() for c in key):
            raise typer.BadParameter(f"{pair!r} has no usable key", param_hint=param_hint)
        if typed:
            try:
                values[key] = json.loads(value)
            except ValueError as exc:
                raise typer.BadParameter(f"{pair!r}: the value after := is not JSON", param_hint=param_hint) from exc
        else:
            values[key] = value
    return values


P = ParamSpec("P")
R = TypeVar("R")


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Every API command goes through here: API errors, network errors and local refusals
    become a message on stderr and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ApiFailure as exc:
            typer.echo(exc.describe(), err=True)
            raise typer.Exit(EXIT_NOT_FOUND if exc.status in (401, 403, 404) else EXIT_FAILED) from None
        except Unreachable as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_UNREACHABLE) from None
        except httpx.HTTPError as exc:  # anything else httpx can raise mid-request
            typer.echo(f"error: HTTP: {type(exc).__name__}: {exc}", err=True)
            raise typer.Exit(EXIT_UNREACHABLE) from None
        except CliFailure as exc:
            typer.echo(str(exc) if str(exc).startswith("error: ") else f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:  # `forgeflow projects events 7 | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except (KeyError, TypeError) as exc:  # JSON, but not the shape this API answers with
            typer.echo(f"error: the answer lacks what the forgeflow API sends ({exc!r}); is --api-url right?", err=True)
            raise typer.Exit(EXIT_FAILED) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as exc:  # writing the download, reading --file
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper
