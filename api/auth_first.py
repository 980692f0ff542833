"""Authentication and scope before the body. FastAPI parses a route's JSON body before it
solves the route's dependencies, so a request with no key and a malformed body would learn
``400 invalid_payload`` where it should learn ``401``, and a read-only key ``400`` where it
should learn ``403``. ``AuthFirstRoute`` (FastAPI's custom route class) checks the key, and
every scope the route demands (the ``RequireScope`` dependencies it declares), before its
handler reads the body. The route's own dependencies then run as before and reuse the
identity (``resolve_identity`` keeps it for the request)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api.deps import RequireScope, read_api_key
from api.errors import auth_required, insufficient_scope
from api.ratelimit import resolve_identity

WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def demanded_scopes(dependant: Dependant) -> tuple[str, ...]:
    """Every scope a route's dependencies demand, in the order they are declared."""
    found: list[str] = []
    for sub in dependant.dependencies:
        if isinstance(sub.call, RequireScope):
            found.append(sub.call.scope)
        found.extend(demanded_scopes(sub))
    return tuple(dict.fromkeys(found))


class AuthFirstRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        demanded = demanded_scopes(self.dependant)
        if not demanded or not (self.methods or set()) & WITH_BODY:
            return handler  # nothing to read first, or nothing to check

        async def checked(request: Request) -> Response:
            key = read_api_key(request)
            identity = await resolve_identity(gatekeeper=request.app.state.gatekeeper, scope=request.scope, key=key)
            if identity is None:
                raise auth_required()
            missing = [name for name in demanded if not identity.has_scope(name)]
            if missing:
                raise insufficient_scope(missing[0])
            return await handler(request)

        return checked
