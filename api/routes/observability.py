"""Operations endpoints without a key: Prometheus metrics and readiness."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.probes import database_healthy, temporal_healthy
from forgeflow import __version__

router = APIRouter(tags=["health"])

Health = Literal["healthy", "unhealthy"]


class Readiness(BaseModel):
    status: Health
    version: str
    components: dict[str, Health]


@router.get("/metrics", include_in_schema=False)
def read_metrics(request: Request) -> Response:
    """Prometheus text format: this process's request series and the projection gauges."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Whether the API can serve: database and Temporal reachable",
    responses={503: {"model": Readiness, "description": "A component is unhealthy"}},
)
async def read_readiness(request: Request, response: Response) -> Readiness:
    state = request.app.state
    database, temporal = await asyncio.gather(
        database_healthy(getattr(state, "db", None)), temporal_healthy(getattr(state, "temporal", None))
    )
    components: dict[str, Health] = {
        "database": "healthy" if database else "unhealthy",
        "temporal": "healthy" if temporal else "unhealthy",
    }
    healthy = database and temporal
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return Readiness(status="healthy" if healthy else "unhealthy", version=__version__, components=components)
