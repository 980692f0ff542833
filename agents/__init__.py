"""Agent mode: clarify, spec and plan written by a model (any OpenAI-compatible endpoint),
each phase run by the project's workflow, every model request a Temporal activity.

* ``types`` — the pass-through types (light: a workflow may import them).
* ``workflow`` — ``PhaseRun`` (a phase, in the workflow that runs it) and
  ``AgentPhaseWorkflow`` (a phase alone); ``phases`` — the durable agents; ``activities`` —
  prompt, usage and output; ``budget``, ``plan_rules``, ``pricing``, ``prompts``,
  ``schemas``, ``feedback`` — pure rules; ``provider`` — the settings; ``worker`` — what a
  worker registers; ``plugin`` — Pydantic AI's Temporal plugin, its adapter cache reaching
  workflow code; ``fake_llm`` — forgeflow-fake, the test double.
"""
