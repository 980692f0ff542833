"""Agent mode, part 2: coding agents that build one task of the plan in its git work tree.

* ``config`` — ``CodingAgentConfig`` (which agent, its program, model, limits, network,
  the variables it gets, its cost cap), ``config_for``, ``check_available``;
* ``types`` — ``AgentRun``, what one run came to (light: a workflow may import it);
* ``runners`` — ``run_coding_agent``: claude-code, codex or a command, in the sandbox
  (engine/sandbox.py); ``parsers`` — what each prints, read back.

The built-in agent runs in the workflow, not here.
"""
