"""The error contract of the Djass Projects API, for every non-2xx response:
``{"error": {"code", "category", "message", "retryable", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.artifacts import ArtifactStoreUnavailable

log = logging.getLogger("forgeflow.api")

Category = Literal["validation", "auth", "quota", "retryable", "internal"]


class ErrorDetail(BaseModel):
    code: str
    category: Category
    message: str
    retryable: bool = False
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        category: Category,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retryable: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = ErrorDetail(
            code=code,
            category=category,
            message=message,
            retryable=retryable,
            details=details or {},
        )
        self.headers = headers


def auth_required() -> ApiError:
    return ApiError(401, "auth_required", "auth", "Authentication required.")


def insufficient_scope(scope: str) -> ApiError:
    return ApiError(
        403,
        "insufficient_scope",
        "auth",
        f"API key is missing required scope: {scope}",
        details={"required_scope": scope},
    )


def project_not_found(project_id: int | str) -> ApiError:
    return ApiError(
        404,
        "project_not_found",
        "validation",
        "Project not found.",
        details={"project_id": project_id},
    )


def invalid_slug() -> ApiError:
    return ApiError(
        400,
        "invalid_project_slug",
        "validation",
        "project_slug must contain letters or numbers.",
        details={"field": "project_slug"},
    )


def reserved_slug(slug: str) -> ApiError:
    return ApiError(
        400,
        "invalid_project_slug",
        "validation",
        f"project_slug {slug!r} is a reserved name.",
        details={"field": "project_slug"},
    )


def unknown_template(template_id: str, available: list[str]) -> ApiError:
    return ApiError(
        400,
        "unknown_template",
        "validation",
        f"Unknown template {template_id!r}.",
        details={"field": "template", "available": available},
    )


def template_not_found(template_id: str, available: list[str]) -> ApiError:
    return ApiError(
        404,
        "template_not_found",
        "validation",
        f"Template {template_id!r} not found.",
        details={"template_id": template_id, "available": available},
    )


def template_unusable(template_id: str, reason: str) -> ApiError:
    return ApiError(
        400,
        "template_unusable",
        "validation",
        f"Template {template_id!r} cannot be used: {reason}.",
        details={"field": "template", "template": template_id},
    )


def unknown_template_ref(template_id: str, ref: str, reason: str) -> ApiError:
    return ApiError(
        400,
        "unknown_template_ref",
        "validation",
        f"Template {template_id!r} has no ref {ref!r}: {reason}.",
        details={"field": "template", "template": template_id, "ref": ref},
    )


def template_source_unavailable(template_id: str) -> ApiError:
    # Not what git said: that names the operator's URL or path, which a client never sees.
    return ApiError(
        400,
        "template_source_unavailable",
        "validation",
        f"The source of template {template_id!r} cannot be read now; try again later, or ask the operator.",
        details={"field": "template", "template": template_id},
    )


def invalid_field(field: str, message: str) -> ApiError:
    return ApiError(
        400, "invalid_payload", "validation", f"Invalid value for {field}: {message}.", details={"field": field}
    )


def invalid_fields(errors: list[tuple[str, str]]) -> ApiError:
    """Every problem of one request at once: ``details.errors`` lists each (field, message),
    as for a body the schema refuses; ``field`` and the message name the first."""
    field, message = errors[0]
    more = f" (and {len(errors) - 1} more: details.errors)" if len(errors) > 1 else ""
    return ApiError(
        400,
        "invalid_payload",
        "validation",
        f"Invalid value for {field}: {message}{more}.",
        details={"field": field, "errors": [{"field": f, "message": m} for f, m in errors]},
    )


def quota_exceeded(quota: int) -> ApiError:
    return ApiError(
        429,
        "quota_exceeded",
        "quota",
        "Project quota exceeded for this API identity.",
        details={"quota": quota, "retry_guidance": "Delete old projects or request limit bump."},
    )


def queueing_failed() -> ApiError:
    return ApiError(
        503,
        "retryable_error",
        "retryable",
        "Temporary failure while queueing project generation.",
        retryable=True,
        details={"retry_guidance": "Retry with exponential backoff."},
        headers={"Retry-After": "2"},
    )


def unknown_parameters(names: list[str], known: list[str]) -> ApiError:
    """Query parameters the endpoint does not take: refused, not ignored, so that a typo
    (``?stauts=ready``) is not answered with an unfiltered list."""
    return ApiError(
        422,
        "invalid_parameters",
        "validation",
        f"Unknown query parameter{'s' if len(names) > 1 else ''}: {', '.join(names)}.",
        details={
            "field": names[0],
            "unknown": names,
            "known": known,
            "errors": [{"field": name, "message": "Unknown query parameter."} for name in names],
        },
    )


def invalid_state(message: str, current_status: str) -> ApiError:
    return ApiError(409, "invalid_state", "validation", message, details={"current_status": current_status})


def error_response(error: ApiError) -> JSONResponse:
    content, headers = with_request_id(ErrorResponse(error=error.body).model_dump(mode="json"), error.headers)
    return JSONResponse(status_code=error.status_code, content=content, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    if len(loc) == 3 and loc[0] == "query" and isinstance(loc[2], int):
        return str(loc[1])  # one value of a repeated parameter (?status=a&status=b): name it
    parts = (
        [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path", "header") else [str(p) for p in loc]
    )
    return ".".join(parts) or str(loc[0] if loc else "body")


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "Invalid request.", "type": "value_error"}
    in_body = bool(first.get("loc")) and first["loc"][0] == "body"
    field = _field_name(tuple(first.get("loc", ())))
    problems = [{"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in errors[:20]]
    if first.get("type") == "json_invalid":
        message = "Request body is not valid JSON."
    else:
        message = f"Invalid value for {field}: {first.get('msg', 'invalid')}."
    if in_body:
        error = ApiError(
            400,
            "invalid_payload",
            "validation",
            message,
            details={"field": field, "errors": problems},
        )
    else:
        error = ApiError(
            422,
            "invalid_parameters",
            "validation",
            message,
            details={"field": field, "errors": problems},
        )
    return error_response(error)


_HTTP_CODES = {
    400: ("invalid_payload", "Request body could not be parsed."),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "Method not allowed for this endpoint."),
    413: ("payload_too_large", "Request body is too large."),
    415: ("unsupported_media_type", "Request body must be JSON."),
}


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    category: Category = "internal" if exc.status_code >= 500 else "validation"
    headers = dict(exc.headers) if exc.headers else None
    details = {"max_bytes": request.app.state.settings.max_body_bytes} if exc.status_code == 413 else {}
    return error_response(ApiError(exc.status_code, code, category, message, headers=headers, details=details))


async def _on_api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc)


def unavailable(what: str) -> ApiError:
    """503 ``retryable_error``: a service behind the API (``what``) is away for now."""
    return ApiError(
        503,
        "retryable_error",
        "retryable",
        f"The {what} is temporarily unavailable.",
        retryable=True,
        details={"retry_guidance": "Retry with exponential backoff."},
        headers={"Retry-After": "2"},
    )


def database_unavailable() -> ApiError:
    return unavailable("database")


async def _on_database_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(database_unavailable())


def artifact_store_unavailable() -> ApiError:
    return unavailable("artifact store")


async def _on_artifact_store_down(request: Request, exc: Exception) -> JSONResponse:
    # The message names the store and its endpoint: for the log, not for the client.
    log.warning("artifact store unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(artifact_store_unavailable())


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(ApiError(500, "internal_error", "internal", "Internal server error."))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    for db_error in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(db_error, _on_database_down)
    app.add_exception_handler(ArtifactStoreUnavailable, _on_artifact_store_down)
    app.add_exception_handler(Exception, _on_unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Invalid payload or slug",
        401: "Missing or invalid API key",
        403: "Insufficient scope",
        404: "Project not found",
        422: "Invalid query parameters",
        429: "Project quota exceeded (quota_exceeded), rate limited (rate_limited) or too many open event streams"
        " (too_many_streams)",
        500: "Internal error",
        503: "Temporal, the database or the artifact store unavailable (retryable_error)",
    }.items()
}


# Request plumbing: the request id in every error body, rate limits, idempotency keys.


def with_request_id(
    content: dict[str, Any], headers: dict[str, str] | None
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """``details.request_id`` and the ``X-Request-ID`` header, for errors raised in a request."""
    from api.request_context import REQUEST_ID_HEADER, current_request_id

    request_id = current_request_id()
    if request_id is None:
        return content, headers
    content["error"]["details"]["request_id"] = request_id
    return content, {**(headers or {}), REQUEST_ID_HEADER: request_id}


def rate_limited(limit: int, retry_after: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        "quota",
        f"Rate limit of {limit} requests per minute exceeded for this API key.",
        retryable=True,
        details={"limit": limit, "retry_after": retry_after, "retry_guidance": f"Retry after {retry_after} s."},
        headers={"Retry-After": str(retry_after)},
    )


def too_many_streams(limit: int, retry_after: int) -> ApiError:
    return ApiError(
        429,
        "too_many_streams",
        "quota",
        f"This API key already has {limit} open event streams; close one first.",
        retryable=True,
        details={"limit": limit, "retry_after": retry_after, "retry_guidance": "Close a stream, then retry."},
        headers={"Retry-After": str(retry_after)},
    )


def invalid_idempotency_key(max_length: int) -> ApiError:
    return ApiError(
        400,
        "invalid_idempotency_key",
        "validation",
        f"Idempotency-Key must be 1 to {max_length} characters.",
        details={"field": "Idempotency-Key", "max_length": max_length},
    )


def idempotency_key_mismatch() -> ApiError:
    return ApiError(
        422,
        "idempotency_key_mismatch",
        "validation",
        "This Idempotency-Key was already used with a different request.",
        details={"field": "Idempotency-Key"},
    )


def idempotency_key_in_use(retry_after: int) -> ApiError:
    return ApiError(
        409,
        "idempotency_key_in_use",
        "retryable",
        "A request with this Idempotency-Key is still being processed.",
        retryable=True,
        details={"field": "Idempotency-Key", "retry_guidance": f"Retry after {retry_after} s."},
        headers={"Retry-After": str(retry_after)},
    )
