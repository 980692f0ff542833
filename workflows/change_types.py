"""Runs on demand, as the workflow, the agent phases and the API see them: a client's
change to a ready project in agent mode ("add CSV export"), built on top of the project's
last main. Pydantic only, so a workflow may import them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# The most characters a change request may hold (the API refuses more, 400 naming prompt).
MAX_CHANGE_CHARS = 20_000


class ChangeRequest(BaseModel):
    """What a run on demand changes, and from which spec. The phases give the model the
    request as data (never as instructions) with the spec version the last ready run was
    built from, so it writes that spec's next version and plans only the new work."""

    prompt: str = Field(min_length=1, max_length=MAX_CHANGE_CHARS)  # the client's text, literal
    spec_version: int = Field(ge=1)  # the spec the project's last ready main was built from
    # This run's review of its build ("diff": it waits with its diff ready; "none": no wait);
    # None: the project's own (agent.review).
    review: Literal["diff", "none"] | None = None
