"""Query parameters an endpoint does not declare are refused, not ignored."""

from __future__ import annotations

from fastapi import Request

from api.errors import unknown_parameters

# Authenticates any request (api.deps.read_api_key), so every endpoint takes it.
ALWAYS = frozenset({"api_key"})
# Bounds what an error body echoes back of a hostile query string.
MAX_NAMED = 10
MAX_NAME = 64


class OnlyQuery:
    """A dependency: 422 invalid_parameters naming each query parameter not in ``names``.
    Declare it after the identity dependency, so that a request without a key still learns
    401 first."""

    def __init__(self, *names: str) -> None:
        self.names = frozenset(names) | ALWAYS

    async def __call__(self, request: Request) -> None:
        unknown = [name for name in dict.fromkeys(request.query_params) if name not in self.names]
        if unknown:
            raise unknown_parameters([name[:MAX_NAME] for name in unknown[:MAX_NAMED]], sorted(self.names))
