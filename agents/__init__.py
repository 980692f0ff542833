"""Agent mode: clarify, spec and plan written by a model (any OpenAI-compatible endpoint),
each phase a child workflow whose every model request is a Temporal activity.

* ``types`` — the pass-through types (light: a workflow may import them).
* ``workflow`` — ``AgentPhaseWorkflow``; ``phases`` — the durable agents; ``activities`` —
  prompt, usage and output; ``budget``, ``plan_rules``, ``pricing``, ``prompts``,
  ``schemas``, ``feedback`` — pure rules; ``provider`` — the settings; ``worker`` — what a
  worker registers; ``fake_llm`` — forgeflow-fake, the test double.
"""
