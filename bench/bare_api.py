"""The bare API baseline: FastAPI endpoints on forgeflow's paths that return, from
memory, the JSON forgeflow returned for the same requests; served like `forgeflow api`
(``uvicorn.run`` of an app factory, one worker, log level warning).

Its body file holds either one body per path (``status``, ``projects``: figure 4) or a
``catalog``, the owner's projects as forgeflow lists them (figure 6): then a status is
the project's, looked up by id, and a list is the page at ``limit`` and ``offset``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, HTTPException, Query

BODY_ENV = "BENCH_BARE_API_BODY"
STATUS_KEYS = ("id", "status", "error_message", "artifact_ready", "started_at", "finished_at", "updated_at")


def status_body(project: dict[str, Any]) -> dict[str, Any]:
    """A project's status body, from the project as the list shows it."""
    return {name: project[name] for name in STATUS_KEYS}


def list_body(catalog: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """The v1 list body of one page of ``catalog`` (no filters)."""
    page = catalog[offset : offset + limit]
    return {
        "projects": page,
        "total": len(catalog),
        "limit": limit,
        "offset": offset,
        "has_next": offset + len(page) < len(catalog),
        "filters": {"status": None},
    }


def create_app() -> FastAPI:
    bodies: dict[str, Any] = json.loads(Path(os.environ[BODY_ENV]).read_text())
    if "catalog" in bodies:
        return catalog_app(bodies["catalog"])
    app = FastAPI(title="bare")

    @app.get("/api/v1/projects/{project_id}/status")
    async def status(project_id: int) -> dict[str, Any]:
        return bodies["status"]

    @app.get("/api/v1/projects")
    async def projects() -> dict[str, Any]:
        return bodies["projects"]

    return app


def catalog_app(catalog: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI(title="bare")
    statuses = {project["id"]: status_body(project) for project in catalog}

    @app.get("/api/v1/projects/{project_id}/status")
    async def status(project_id: int) -> dict[str, Any]:
        if project_id not in statuses:
            raise HTTPException(404)
        return statuses[project_id]

    @app.get("/api/v1/projects")
    async def projects(
        limit: Annotated[int, Query(ge=1, le=100)] = 20, offset: Annotated[int, Query(ge=0)] = 0
    ) -> dict[str, Any]:
        return list_body(catalog, limit, offset)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the bare FastAPI baseline.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", required=True, help="JSON: {'status': ..., 'projects': ...} or {'catalog': [...]}")
    args = parser.parse_args()
    os.environ[BODY_ENV] = args.body
    uvicorn.run(
        "bench.bare_api:create_app", factory=True, host=args.host, port=args.port, workers=1, log_level="warning"
    )


if __name__ == "__main__":
    main()
