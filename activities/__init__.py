"""Temporal activities: the engine's steps and the database projection."""
