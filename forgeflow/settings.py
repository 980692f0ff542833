"""One settings object for every forgeflow process (API, worker, CLI, dev stack).

Precedence: explicit arguments > ``FORGEFLOW_*`` environment variables > the
``forgeflow:`` section of ``temporal-dev.yaml`` > the defaults below.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

if TYPE_CHECKING:
    from engine.sources import TemplateSources

REPO_DEV_CONFIG = Path(__file__).resolve().parent.parent / "temporal-dev.yaml"


def dev_config_path() -> Path | None:
    """The dev-stack YAML in force: ``$FORGEFLOW_CONFIG_FILE``, ``./temporal-dev.yaml``
    or the one shipped beside the package (editable installs)."""
    explicit = os.environ.get("FORGEFLOW_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    for candidate in (Path.cwd() / "temporal-dev.yaml", REPO_DEV_CONFIG):
        if candidate.is_file():
            return candidate
    return None


class LlmPrice(BaseModel):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORGEFLOW_", extra="ignore")

    data_dir: Path = Path(".forgeflow")
    database_url: str | None = None
    temporal_address: str | None = None
    namespace: str = "default"
    task_queue: str = "forgeflow"
    project_quota: int = Field(default=200, ge=0)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    max_parallel_tasks: int = Field(default=4, ge=1, le=64)
    # Plans with more tasks than this run them in child workflows of this many tasks each.
    tasks_per_batch: int = Field(default=250, ge=1, le=2000)
    # Tasks ready together share an activity at least this many at a time (see
    # workflows.dag.run_dag_packed); 1 spreads them over every free slot.
    min_tasks_per_pack: int = Field(default=8, ge=1, le=25)
    # Largest request body the API reads; bigger ones are refused with 413 unread.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # A task still running after this long has its start written on its own; quicker ones
    # are recorded once, start and result together. 0: every start is written at once.
    task_start_record_seconds: float = Field(default=0.25, ge=0, le=60)
    # How long a task may stay silent before another worker takes it over.
    task_heartbeat_timeout: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    # How long the API waits for a worker to take an update before queueing it as a signal.
    update_timeout: timedelta = Field(default=timedelta(seconds=10), gt=timedelta(0))
    # How long a run waits at the approval gate before it fails.
    approval_timeout: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))
    # os.pathsep-separated directories holding extra cookiecutter-format templates.
    template_path: str = ""
    # Comma-separated template ids whose hooks and check commands may run (built-ins always).
    trusted_templates: str = ""
    # Template sources: git repositories (URLs or local paths the workers can reach) a create
    # names by id, as "<id>" or "<id>@<ref>" (engine/sources.py). A JSON object
    # {"id": "url", ...}; a templates.yaml (`sources: {id: url}`) may name more; these win.
    # A client never names a URL: only these are fetched.
    template_sources: dict[str, str] = Field(default_factory=dict)
    template_sources_file: Path | None = None
    # Where hooks and checks run: bwrap (a bubblewrap sandbox; see engine/sandbox.py) or off
    # (a plain subprocess, trusted templates only). Without bwrap, trusted code runs unsandboxed
    # with a warning and untrusted code is refused.
    sandbox: Literal["bwrap", "off"] = "bwrap"
    # Limits of each program in the sandbox: wall clock (then it is killed), CPU time,
    # address space, and processes (of the sandbox's uid: see RELIABILITY.md).
    sandbox_timeout_seconds: float = Field(default=300, gt=0)
    sandbox_cpu_seconds: int = Field(default=300, ge=1)
    sandbox_memory_mb: int = Field(default=1024, ge=64)
    sandbox_processes: int = Field(default=256, ge=8)
    log_level: str = "INFO"
    # json: one JSON object per line (timestamp, level, logger, message, request/project ids);
    # text: the classic one-line format. Both redact API keys and webhook secrets.
    log_format: Literal["json", "text"] = "json"
    # host:port where the worker serves the Temporal SDK's Prometheus metrics; empty disables.
    worker_metrics_address: str = "127.0.0.1:9464"
    # Threads (and so activities at once) of one worker process. The engine's activities
    # are CPU-bound Python and share one interpreter: fewer threads contend less (see
    # BENCHMARKS.md), more leave room for activities that wait (webhooks, hooks, checks).
    activity_threads: int = Field(default=16, ge=1, le=256)
    # OpenTelemetry spans across API -> workflow -> activities (Temporal's TracingInterceptor).
    otel_enabled: bool = False
    # A comment line on idle event streams, so proxies and clients see the stream alive.
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Event streams one API key may hold open in one API process (the agent-runner API's 4);
    # the next is 429 too_many_streams. Every stream costs a connection and a task.
    max_streams_per_key: int = Field(default=4, ge=1, le=1000)
    # How often an API process checks that the keys of its open streams still work: a
    # revoked or expired key's streams end within about this long.
    stream_key_check_seconds: float = Field(default=2.0, gt=0, le=60)
    # Slow clients (slowloris): the request line and headers must arrive within this long of
    # the connection opening (or of the request's first byte on a kept-alive connection), and
    # the body within this long of the headers; else the connection is closed (408).
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    http_body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # An idle kept-alive connection is closed after this long (uvicorn's timeout_keep_alive).
    http_keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    # Requests per API key per fixed one-minute window, counted in the database; 0 disables.
    rate_limit_per_minute: int = Field(default=600, ge=0)
    # How long an API process trusts a key it has authenticated; a key revoked or changed
    # elsewhere is noticed within this time (sooner when its rate-limit lease runs out). 0: every request.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # How long an API process serves a project's status body from memory: a project polled
    # by many clients costs one read per interval, and a poller sees a change at most this
    # late (measured: a 1 s copy added ~1 s to create-to-ready). 0 disables it.
    status_cache_seconds: float = Field(default=0.1, ge=0, le=1.0)
    # Project reads (status, list, get) one API process runs at once, each in a thread: more
    # mostly contend for the GIL, unless the database is far away (see api/reads.py).
    api_read_threads: int = Field(default=2, ge=1, le=64)
    # How long a completed Idempotency-Key is replayed before it may be pruned.
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # Fernet key(s) that encrypt webhook signing secrets at rest; comma-separated, the first
    # encrypts, all decrypt (rotation). Unset: one is generated into <data_dir>/secret.key.
    secret_key: str | None = Field(default=None, repr=False)
    # Let webhook URLs reach loopback, private and link-local addresses (dev and tests only).
    webhook_allow_private: bool = False
    # How long a run that has ended waits for its last webhook deliveries; those still
    # retrying then go on in a workflow of their own, and the run closes.
    webhook_grace: timedelta = Field(default=timedelta(seconds=30), ge=timedelta(0))
    # Where artifacts (ZIPs, git bundles, specs, task bundles) live: unset, in
    # <data_dir>/artifacts, which API hosts and workers must then share; s3://bucket[/prefix],
    # in an S3-compatible bucket (AWS S3, MinIO, R2), credentials from boto3's own chain
    # (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role...).
    artifacts_url: str | None = None
    # The S3 endpoint (MinIO, R2); unset, boto3's own: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS.
    artifacts_endpoint_url: str | None = None
    # The bucket's region; unset, boto3's own (AWS_REGION, AWS_DEFAULT_REGION, the profile).
    artifacts_region: str | None = None
    # Downloads from S3 answer 307 to a presigned URL (the client fetches the object from the
    # store itself) instead of streaming through the API; the URL works this many seconds.
    artifacts_presign: bool = False
    artifacts_presign_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    # Local copies of S3 ZIPs the API reads files from (by sha256, least recently used
    # evicted past this size), under <data_dir>/cache/artifacts.
    artifacts_cache_mb: int = Field(default=1024, ge=0)

    @field_validator("artifacts_url", "artifacts_endpoint_url", "artifacts_region", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # FORGEFLOW_ARTIFACTS_URL= (set but empty) means the default, as unset does.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("artifacts_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from store.artifacts import parse_s3_url

        return parse_s3_url(value.strip()).url  # normalised: no trailing slash

    @field_validator("artifacts_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:9000")
        return value

    # Agent mode (agents/): any OpenAI-compatible chat-completions endpoint. Without a base
    # URL, an API key and a model, nothing changes and agent mode is refused, naming what is
    # missing (agents.provider.missing_llm_setting). Keyless local servers take any key.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    # USD per million input and output tokens, by model name, for models the price tables
    # (genai-prices) do not know, or to override them: {"my-model": {"input": 0.5, "output": 1.5}}.
    llm_prices: dict[str, LlmPrice] = Field(default_factory=dict)
    llm_temperature: float | None = Field(default=None, ge=0, le=2)
    llm_seed: int | None = None
    # One attempt at one model request; Temporal retries timeouts, 429s and 5xx with backoff,
    # this many attempts in all (the provider client's own retries are off).
    llm_request_timeout_seconds: float = Field(default=120, gt=0, le=3600)
    llm_max_attempts: int = Field(default=4, ge=1, le=20)
    # How many times a malformed or invalid answer goes back to the model before the phase fails.
    llm_output_retries: int = Field(default=2, ge=0, le=10)
    # The longest project description (and answer or feedback text) a prompt carries.
    llm_max_brief_chars: int = Field(default=8000, ge=100, le=100_000)

    # Agent mode, part 2: the coding agent that builds each task of an agent's plan in its own
    # git work tree, in the sandbox (agents/coding/). None: the template's modules are built.
    # A project may name another kind only if it is listed in coding_agents_allowed.
    coding_agent: Literal["builtin", "claude-code", "codex", "command"] | None = None
    coding_agents_allowed: str = ""  # comma-separated kinds a create may choose besides the default
    agent_command: str = ""  # "command": an argv template with {prompt_file}, {workdir}, {model}
    agent_executable: str | None = None  # "claude-code"/"codex": the program (default: claude, codex)
    agent_model: str | None = None
    agent_max_turns: int | None = Field(default=None, ge=1)  # claude-code's --max-turns
    agent_timeout_seconds: float = Field(default=1800, gt=0)
    agent_memory_mb: int = Field(default=4096, ge=256)
    agent_network: bool = False  # the agent's own network access (its model API): off unless allowed
    agent_pass_env: str = ""  # comma-separated names of variables the agent gets (its API key)
    agent_read_only: str = ""  # os.pathsep-separated directories the agent may read (toolchains)
    agent_max_file_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    agent_max_task_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # A task of any coding agent on this worker that spends more fails; a project's own cap
    # (agent.budget.max_cost_usd_per_task) may be tighter.
    agent_max_cost_usd_per_task: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    agent_extra_args: str = ""  # after forgeflow's own arguments, split like a shell would
    agent_permission_args: str | None = None  # None: the kind's own (agents/coding/config.py)

    @property
    def coding_agent_kinds(self) -> frozenset[str]:
        """The kinds a create may name: the default and the allowed ones."""
        kinds = {k.strip() for k in self.coding_agents_allowed.split(",") if k.strip()}
        return frozenset(kinds | ({self.coding_agent} if self.coding_agent else set()))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'forgeflow.db').resolve()}"

    @property
    def trusted_template_ids(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.trusted_templates.split(",") if t.strip())

    @property
    def template_source_registry(self) -> TemplateSources:
        """The registered sources (engine.sources.TemplateSources) and the cache their
        commits are checked out into, ``<data_dir>/template-cache/<commit>``."""
        from engine.sources import TemplateSources, load_registry  # the engine is not needed to read settings

        urls = load_registry(self.template_sources, self.template_sources_file)
        return TemplateSources(urls=urls, cache_dir=(self.data_dir / "template-cache").resolve())

    @property
    def artifact_dir(self) -> Path:
        return (self.data_dir / "artifacts").resolve()

    @property
    def artifact_cache_dir(self) -> Path:
        return (self.data_dir / "cache" / "artifacts").resolve()

    @property
    def run_tuning(self) -> dict[str, Any]:
        """What every start of a project's workflow carries from these settings (a create
        and a retry alike): ProjectGenerationInput's fields of the same names."""
        return {
            "max_parallel_tasks": self.max_parallel_tasks,
            "tasks_per_batch": self.tasks_per_batch,
            "min_tasks_per_pack": self.min_tasks_per_pack,
            "approval_timeout_seconds": self.approval_timeout.total_seconds(),
            "task_heartbeat_seconds": self.task_heartbeat_timeout.total_seconds(),
            "webhook_grace_seconds": self.webhook_grace.total_seconds(),
        }

    @property
    def resolved_temporal_address(self) -> str:
        if self.temporal_address:
            return self.temporal_address
        server = load_dev_server_config()
        return f"{server.ip}:{server.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = dev_config_path()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path, yaml_config_section="forgeflow"))
        return tuple(sources)


class DevServerConfig(BaseModel):
    """The ``temporal:`` section: how `forgeflow dev`/`forgeflow temporal` start the server."""

    ip: str = "127.0.0.1"
    port: int = 7233
    ui_port: int = 8233
    db_filename: str | None = "temporal.db"
    log_level: str = "warn"
    search_attributes: dict[str, str] = Field(default_factory=dict)
    dynamic_config: dict[str, Any] = Field(default_factory=dict)
    sqlite_pragmas: dict[str, str] = Field(default_factory=dict)


def load_dev_server_config() -> DevServerConfig:
    path = dev_config_path()
    if path is None:
        return DevServerConfig()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return DevServerConfig.model_validate(raw.get("temporal") or {})


@lru_cache
def get_settings() -> Settings:
    return Settings()
