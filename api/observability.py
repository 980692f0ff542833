"""Request metrics and the access log (one pure-ASGI middleware), and the projection
gauges read from the database at scrape time. Each app has its own registry: every API
process exposes its own request series (see the README, "Observability")."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.db import Database
from store.models import Project, Run, Task
from store.stats import PHASE_BUCKETS, count_by_status, phase_durations, task_totals
from workflows.types import ProjectStatus

access_log = logging.getLogger("forgeflow.access")
log = logging.getLogger("forgeflow.api")

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes are logged at DEBUG: they come every few seconds and say nothing.
QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
# Where a component that answers before routing names the route it answered for.
ANSWERED_ROUTE = "forgeflow_route"
TASK_STATUSES = ("pending", "running", "succeeded", "failed", "cancelled", "skipped")


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


# The prefix each route was last found under, so that the next request of the route costs
# one match, not a search (checked every time: a router may be included twice).
_prefixes: dict[int, str] = {}


def _included_template(route: Any, path: str) -> str | None:
    """The matched route's template with the prefix it was included under: FastAPI may hand
    over the route as declared (``/projects/{project_id}``), without ``/api/v1``."""
    template, regex = getattr(route, "path_format", None), getattr(route, "path_regex", None)
    if not isinstance(template, str) or regex is None:
        return None
    known = _prefixes.get(id(route))
    if known is not None and path.startswith(known) and regex.match(path[len(known) :]):
        return known + template
    # The prefix is the literal part routing accepted before the route's own pattern.
    for cut in [0, *(i for i, c in enumerate(path) if c == "/" and i > 0)]:
        if regex.match(path[cut:]):
            _prefixes[id(route)] = path[:cut]
            return path[:cut] + template
    return template


def _documented_templates(app: Any) -> list[tuple[re.Pattern[str], str]]:
    table: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "route_templates", None)
    if table is None:
        paths = app.openapi().get("paths", {})
        table = [(compile_path(template)[0], template) for template in paths]
        app.state.route_templates = table
    return table


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/projects/{project_id}``), never the raw path:
    one label per route, ``unmatched`` for any path no route serves."""
    answered: str | None = (scope.get("state") or {}).get(ANSWERED_ROUTE)
    if answered is not None:
        return answered
    path = _route_path(scope)
    found = _included_template(scope.get("route"), path)
    if found is not None:
        return found
    # Answered before routing (a 413, an idempotent replay): match the documented routes.
    app = scope.get("app")
    if app is not None and hasattr(app, "openapi"):
        for pattern, template in _documented_templates(app):
            if pattern.match(path):
                return template
    return UNMATCHED


class ProjectionCollector(Collector):
    """Projects, runs and tasks by status, task attempts and phase durations: a handful of
    GROUP BY/SUM queries per scrape, so every API process reports the same figures."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("forgeflow_database_up", "1 if this scrape could read the projection database.")
        db: Database | None = getattr(self._app.state, "db", None)
        if db is None:
            up.add_metric([], 0)
            yield up
            return
        try:
            with db.session() as session:
                if db.engine.dialect.name == "postgresql":
                    session.execute(text("SET LOCAL statement_timeout = 5000"))
                projects = count_by_status(session, Project)
                runs = count_by_status(session, Run)
                tasks = count_by_status(session, Task)
                totals = task_totals(session)
                phases = phase_durations(session)
        except Exception as exc:
            log.warning("metrics: projection unreadable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, counts, known in (
            ("forgeflow_projects", "Projects by status (database, at scrape time).", projects, list(ProjectStatus)),
            ("forgeflow_runs", "Runs by status (database, at scrape time).", runs, list(ProjectStatus)),
            ("forgeflow_tasks", "Tasks by status (database, at scrape time).", tasks, TASK_STATUSES),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=["status"])
            for status in sorted({*map(str, known), *counts}):
                gauge.add_metric([status], counts.get(status, 0))
            yield gauge
        for name, doc, value in (
            ("forgeflow_task_attempts", "Attempts all tasks made (tasks.attempts summed).", totals.attempts),
            ("forgeflow_task_retries", "Attempts after a task's first (tasks.attempts - 1 summed).", totals.retries),
            ("forgeflow_task_failures", "Tasks that ended failed.", totals.failures),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        histogram = HistogramMetricFamily(
            "forgeflow_phase_duration_seconds",
            "Time projects spent in each phase they have left (status_changed events).",
            labels=["phase"],
        )
        bounds = [*map(str, map(float, PHASE_BUCKETS)), "+Inf"]
        for phase, h in sorted(phases.items()):
            histogram.add_metric([phase], list(zip(bounds, h.buckets, strict=True)), sum_value=h.total)
        yield histogram


class ApiMetrics:
    def __init__(self, app: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "forgeflow_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "forgeflow_http_request_duration_seconds",
            "Time to answer an HTTP request (until the handler returns), by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "forgeflow_http_requests_in_progress", "HTTP requests being answered now.", registry=self.registry
        )
        self.registry.register(ProjectionCollector(app))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        # The labelled series, looked up once: ``labels()`` validates and locks on every call.
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, str(status))
        series = self._series.get(key)
        if series is None:
            series = (self.requests.labels(*key), self.duration.labels(method, route))
            self._series[key] = series
        series[0].inc()
        series[1].observe(elapsed)


class ObservabilityMiddleware:
    """Counts and times every request by route template and writes one access-log line
    (path without the query string, so no ``?api_key=`` ever reaches a log)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaping is a 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_progress.dec()
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        route = route_template(scope)
        self.metrics.observe(method, route, status, elapsed)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        extra: dict[str, Any] = {
            "method": method,
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        }
        project_id = str((scope.get("path_params") or {}).get("project_id", ""))
        if project_id.isdigit():
            extra["project_id"] = int(project_id)
        identity = (scope.get("state") or {}).get("identity")
        if identity is not None:
            extra["owner_id"] = identity.owner_id
        access_log.log(level, "%s %s %s %.1fms", method, scope["path"], status, elapsed * 1000, extra=extra)
