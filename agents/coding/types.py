"""What one run of a coding agent on one task came to. Pydantic only, so a workflow or an
activity's result may carry it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AgentRun(BaseModel):
    """``ok``: the program exited 0, reported no failure of its own, printed what its kind
    prints, and stayed within the task's cost cap. Whether its changes are kept is the
    caller's to decide (git's view of the work tree, never the agent's word)."""

    ok: bool
    summary: str = ""  # the agent's final message (its result text), bounded
    # Every input token, cached or not (as agents.pricing counts them); the cached ones also apart.
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_read_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    cost_usd: float | None = None  # None: the agent reported none (never read as free)
    session_id: str | None = None  # claude-code's session, codex's thread
    num_turns: int | None = None
    risks: list[str] = Field(default_factory=list)
    output_tail: str = ""  # the end of stderr and of stdout, for a reader of the error
    error: str | None = None  # why it is not ok
    timed_out: bool = False
