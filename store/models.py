"""SQLAlchemy models. The project rows are a projection of the workflows' state:
only activities write status fields; the API reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import LargeBinary, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Always hands back aware UTC datetimes, also on SQLite (which keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, list[dict[str, Any]]: JSON, datetime: UTCDateTime}


class Owner(Base):
    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    project_quota: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    # Only a SHA-256 of the key is kept; keys carry 256 bits of randomness, so a
    # slow password hash would add latency to every request and no safety.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    # None marks a legacy profile key: every project scope, never ``admin`` (store.keys).
    scopes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # When an API process last checked the key, to within a minute (store.keys.touch_key).
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        Index("ix_projects_owner_status", "owner_id", "status"),
        # The list (store.reads.project_page): the owner's projects in id order, archived_at
        # read from the index, so the page (newest first) and its count never touch the table.
        # Not (owner_id, archived_at, id): PostgreSQL takes no order from a column under IS NULL,
        # and sorted every id of the owner's for each page.
        Index("ix_projects_owner_list", "owner_id", "id", "archived_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str] = mapped_column(String(100))
    # A registered git source's template (engine.sources): the ref the create named
    # ("HEAD": the default branch) and the commit it resolved to then, which every run of
    # the project renders. None for a directory template.
    template_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    template_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="queued")
    phase: Mapped[str] = mapped_column(String(32), default="queued")
    # Paused by its owner: no new task starts until resumed (the run's flag write).
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    error_message: Mapped[str] = mapped_column(Text, default="")
    input_payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    artifact_ready: Mapped[bool] = mapped_column(default=False)
    artifact_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    artifact_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The workflow numbers its status writes; a write only lands if its number is
    # higher, so activity retries and reordered deliveries never move a project back.
    projection_seq: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)
    require_approval: Mapped[bool] = mapped_column(default=False)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    current_run: Mapped[int] = mapped_column(Integer, default=1)
    spec_version: Mapped[int] = mapped_column(Integer, default=0)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The last event number handed out for this project (see Event.seq).
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Open questions while the run waits for answers (the workflow writes them).
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Agent mode (workflows.agent_types.AgentMode as JSON: the brief, the model, the budget),
    # what a retry starts from; POST /budget replaces the budget. None: template mode.
    agent: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Run(Base):
    """One execution of the project's workflow: the first, a retry, or a template update."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="queued")
    trigger: Mapped[str] = mapped_column(String(32), default="create")
    spec_version: Mapped[int] = mapped_column(Integer, default=0)
    dag: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # A ready run's git history: its bundle in the artifact store, its main, and the commit
    # it was built on (an update's previous main; None for a history of its own).
    bundle_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    head_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    base_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(100))
    sequence: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="pending")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    branch_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    files: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SpecVersion(Base):
    __tablename__ = "spec_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    documents: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The answers the spec was written from and the review feedback so far: what a
    # retry needs to rebuild this exact version without asking again.
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    feedback: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decision_notes: Mapped[str] = mapped_column(Text, default="")


class Event(Base):
    """What happened to a project, in order. ``seq`` is handed out under the project's
    row lock, so for every project it grows by one with each commit: a client that has
    seen event N and asks for those after N can never miss one committed later."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("project_id", "seq"), UniqueConstraint("project_id", "dedup_key"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Activities run at least once; the same write twice carries the same key.
    dedup_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookSecret(Base):
    """An owner's Standard Webhooks signing secret (``whsec_...``). Encrypted with the
    server key, not hashed: the worker needs the secret itself to sign deliveries."""

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), unique=True)
    encrypted_secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RateLimitWindow(Base):
    """Requests one API key made in one fixed one-minute window; one upsert per request."""

    __tablename__ = "rate_limit_windows"

    key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # Unix time (seconds) at which the window starts; a multiple of 60.
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hits: Mapped[int] = mapped_column(Integer, default=0)


class IdempotencyRecord(Base):
    """An ``Idempotency-Key`` of one owner: claimed by the first request, then holding
    its response (status, headers, body) for replay until it expires."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of method, path and canonical JSON body.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # None while the first request is still running.
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_headers: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The scopes the route demanded of the request that ran: a replay demands them too.
    required_scopes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # When the running request claimed the key; a stale claim may be taken over.
    locked_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ModelUsage(Base):
    """One completed model request of agent mode: its tokens and cost, by project, run,
    phase and task (store.usage). ``cost_usd`` is None when the price tables do not know
    the model; ``request_key`` is unique per request, so a retried recording is stored once."""

    __tablename__ = "model_usage"
    __table_args__ = (
        UniqueConstraint("project_id", "request_key"),
        Index("ix_model_usage_project_run", "project_id", "run_number"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    run_number: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    request_key: Mapped[str] = mapped_column(String(300))
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    total_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
