"""Agent mode in the API tests: a provider configured (forgeflow-fake on a free port, a real
HTTP server), and project rows in agent mode, made through the store's own functions."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import agents
from agents.fake_llm import FakeLlm
from forgeflow.settings import Settings
from store.db import Database
from store.keys import CreatedKey
from store.projects import create_project

MODEL = "test-model"
FAKE_CODER = Path(agents.__file__).parent / "fake_coder.py"
NO_LIMITS = {"max_total_tokens": None, "max_cost_usd": None, "max_cost_usd_per_task": None}


def with_provider(settings: Settings, fake: FakeLlm, **more: Any) -> Settings:
    return settings.model_copy(
        update={"llm_base_url": fake.url, "llm_api_key": SecretStr("test-key"), "llm_model": MODEL, **more}
    )


def with_command_agent(
    settings: Settings, fake: FakeLlm, *, options: str = "", readable: Sequence[Path] = (), **more: Any
) -> Settings:
    """The provider, and forgeflow-fake's coder (agents/fake_coder.py, ``options`` before its
    arguments) as the command agent, in the sandbox with its directory (and ``readable``)
    readable."""
    command = f"{sys.executable} {FAKE_CODER} {options}{{prompt_file}} {{workdir}}"
    return with_provider(
        settings,
        fake,
        coding_agent="command",
        agent_command=command,
        agent_read_only=os.pathsep.join(str(path) for path in (FAKE_CODER.parent, *readable)),
        agent_timeout_seconds=60,
        **more,
    )


@pytest.fixture
def agent_row(db: Database, make_key):
    """(key, project id) of a project row in agent mode, as the API's create leaves it."""

    def make(*, key: CreatedKey | None = None, budget: dict[str, Any] | None = None) -> tuple[CreatedKey, int]:
        key = key or make_key()
        with db.session(write_lock=True) as session:
            project = create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name="Widget Lib",
                slug="widget_lib",
                description="",
                template="widget-lib",
                input_payload={"project_name": "Widget Lib", "template": "widget-lib", "agent": {}, "prompt": "A lib."},
                agent={"brief": "A lib.", "model": MODEL, "budget": {**NO_LIMITS, **(budget or {})}},
            )
        return key, project.id

    return make
