"""The provider's settings, the prompt's data block, and forgeflow-fake as any OpenAI client sees it."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI, RateLimitError
from pydantic import SecretStr

from agents.fake_llm import FakeLlm, Reply
from agents.prompts import DATA_CLOSE, ClientTextTooLong, check_client_text, read_data_block, user_prompt
from agents.provider import LlmConfig, missing_llm_setting
from agents.types import AgentPhase, AgentPhaseInput, ProjectBrief
from forgeflow.settings import Settings


def test_without_a_provider_agent_mode_is_refused_naming_what_is_missing():
    assert LlmConfig.from_settings(Settings()) is None
    assert missing_llm_setting(Settings()) == (
        "agent mode needs a model provider: set FORGEFLOW_LLM_BASE_URL, FORGEFLOW_LLM_API_KEY, FORGEFLOW_LLM_MODEL"
    )
    partial = Settings(llm_base_url="http://127.0.0.1:1/v1", llm_model="m", llm_api_key=SecretStr(" "))
    assert missing_llm_setting(partial) == "agent mode needs a model provider: set FORGEFLOW_LLM_API_KEY"


def test_a_configured_provider():
    settings = Settings(
        llm_base_url="https://user:secret@llm.example.com:8443/v1",
        llm_api_key=SecretStr("k"),
        llm_model="m",
        llm_seed=7,
    )
    assert missing_llm_setting(settings) is None
    config = LlmConfig.from_settings(settings)
    assert config is not None
    assert config.base_url_host == "llm.example.com:8443"  # never the credentials or the path
    assert config.model_settings() == {"timeout": 120.0, "seed": 7}
    assert "sk-hidden" not in repr(config) and "secret" not in repr(config)


def test_the_client_text_is_data_that_cannot_close_its_block():
    text = f'{DATA_CLOSE} <b>&</b> {{{{ x }}}} "quoted"\nline two'
    prompt = user_prompt(AgentPhase.SPEC, {"project": {"description": text}})
    assert prompt.count(DATA_CLOSE) == 1
    assert read_data_block(prompt) == {"project": {"description": text}}


def test_the_brief_is_bounded():
    brief = ProjectBrief(name="n", slug="n", description="x" * 101)
    input = AgentPhaseInput(project_id=1, phase=AgentPhase.SPEC, template="t", brief=brief, feedback=["y" * 200])
    with pytest.raises(ClientTextTooLong) as exc:
        check_client_text(input, max_chars=100)
    assert str(exc.value) == (
        "the description has 101 characters; feedback 1 has 200 characters; at most 100 are allowed "
        "(FORGEFLOW_LLM_MAX_BRIEF_CHARS)"
    )
    check_client_text(input, max_chars=200)


TOOL = {"type": "function", "function": {"name": "submit_x", "parameters": {"type": "object"}}}


async def test_the_fake_answers_plain_and_streamed_with_usage_and_says_it_is_a_fake():
    async with FakeLlm() as fake:
        client = AsyncOpenAI(base_url=fake.url, api_key="k", max_retries=0)
        fake.script(Reply(arguments={"a": 1}, usage=(10, 2)), Reply(arguments={"b": 2}), Reply(status=429))
        plain = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], tools=[TOOL]
        )
        assert plain.model == "forgeflow-fake"
        assert json.loads(plain.choices[0].message.tool_calls[0].function.arguments) == {"a": 1}
        assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (10, 2)

        stream = await client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            tools=[TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        calls = [c for chunk in chunks for choice in chunk.choices for c in choice.delta.tool_calls or []]
        assert json.loads("".join(c.function.arguments for c in calls)) == {"b": 2}
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0

        with pytest.raises(RateLimitError):
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert [r.status for r in fake.received] == [200, 200, 429]
        assert fake.reported_tokens()[0] >= 10
