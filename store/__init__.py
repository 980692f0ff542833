"""Persistence: the read-side projection of projects, API keys and the artifact store."""
