"""The bare API baseline: FastAPI endpoints on forgeflow's paths that return, from
memory, the JSON forgeflow returned for the same requests; served like `forgeflow api`
(``uvicorn.run`` of an app factory, one worker, log level warning)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

BODY_ENV = "BENCH_BARE_API_BODY"


def create_app() -> FastAPI:
    bodies: dict[str, Any] = json.loads(Path(os.environ[BODY_ENV]).read_text())
    app = FastAPI(title="bare")

    @app.get("/api/v1/projects/{project_id}/status")
    async def status(project_id: int) -> dict[str, Any]:
        return bodies["status"]

    @app.get("/api/v1/projects")
    async def projects() -> dict[str, Any]:
        return bodies["projects"]

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the bare FastAPI baseline.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", required=True, help="JSON file: {'status': ..., 'projects': ...}")
    args = parser.parse_args()
    os.environ[BODY_ENV] = args.body
    uvicorn.run(
        "bench.bare_api:create_app", factory=True, host=args.host, port=args.port, workers=1, log_level="warning"
    )


if __name__ == "__main__":
    main()
