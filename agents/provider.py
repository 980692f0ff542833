"""The model provider: any OpenAI-compatible chat-completions endpoint, from the settings.

The OpenAI client's own retries are off (``max_retries=0``): Temporal retries a failed
request, as its own activity, with backoff and a bounded number of attempts
(agents.phases), so a request is never retried in two places at once."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from forgeflow.settings import LlmPrice, Settings

if TYPE_CHECKING:  # imported when a model is built: the API and a worker without a provider never pay for them
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.settings import ModelSettings

# The settings a provider needs, in the order a refusal names them.
REQUIRED = (
    ("llm_base_url", "FORGEFLOW_LLM_BASE_URL"),
    ("llm_api_key", "FORGEFLOW_LLM_API_KEY"),
    ("llm_model", "FORGEFLOW_LLM_MODEL"),
)


def missing_llm_settings(settings: Settings) -> list[str]:
    """The ``FORGEFLOW_LLM_*`` variables agent mode needs and the settings lack."""
    missing = []
    for field, env in REQUIRED:
        value = getattr(settings, field)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not (text or "").strip():
            missing.append(env)
    return missing


def missing_llm_setting(settings: Settings) -> str | None:
    """None when a provider is configured; else a sentence naming what is missing (the API's
    400 when agent mode is asked for)."""
    missing = missing_llm_settings(settings)
    if not missing:
        return None
    return f"agent mode needs a model provider: set {', '.join(missing)}"


class LlmConfig(BaseModel):
    """A configured provider, typed: what every agent of this worker talks to."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(repr=False)  # may carry credentials
    api_key: SecretStr
    model: str
    prices: dict[str, LlmPrice]
    temperature: float | None
    seed: int | None
    request_timeout_seconds: float
    max_attempts: int
    output_retries: int
    max_brief_chars: int
    # How long a model request may go without a heartbeat before another worker takes it:
    # the time to notice a worker that died mid-request (the task heartbeat setting's job).
    heartbeat_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmConfig | None:
        if missing_llm_settings(settings):
            return None
        assert settings.llm_base_url and settings.llm_api_key and settings.llm_model
        return cls(
            base_url=settings.llm_base_url.strip(),
            api_key=settings.llm_api_key,
            model=settings.llm_model.strip(),
            prices=dict(settings.llm_prices),
            temperature=settings.llm_temperature,
            seed=settings.llm_seed,
            request_timeout_seconds=settings.llm_request_timeout_seconds,
            max_attempts=settings.llm_max_attempts,
            output_retries=settings.llm_output_retries,
            max_brief_chars=settings.llm_max_brief_chars,
            heartbeat_seconds=settings.task_heartbeat_timeout.total_seconds(),
        )

    @property
    def base_url_host(self) -> str:
        """The endpoint's host (and port), for the record: never its path or credentials."""
        parts = urlsplit(self.base_url)
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else ""

    def model_settings(self) -> ModelSettings:
        from pydantic_ai.settings import ModelSettings

        settings = ModelSettings(timeout=self.request_timeout_seconds)
        if self.temperature is not None:
            settings["temperature"] = self.temperature
        if self.seed is not None:
            settings["seed"] = self.seed
        return settings


def chat_model(config: LlmConfig) -> OpenAIChatModel:
    from openai import AsyncOpenAI
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.api_key.get_secret_value(),
        max_retries=0,
        timeout=config.request_timeout_seconds,
    )
    provider = OpenAIProvider(openai_client=client)
    return OpenAIChatModel(config.model, provider=provider, settings=config.model_settings())
