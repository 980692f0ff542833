"""Slugs as the Djass API normalises them: slugify, then '-' -> '_'."""

from __future__ import annotations

import re
import unicodedata


def slugify(value: str) -> str:
    """Django's ``slugify``: ASCII-fold, drop what is not a word character, space or
    hyphen, lowercase, collapse runs of spaces/hyphens into one hyphen, trim."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


def normalise_project_slug(value: str) -> str:
    return slugify(value).replace("-", "_")


# Names that make a directory unusable somewhere: Windows device names.
RESERVED_SLUGS = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
)


def is_reserved_slug(slug: str) -> bool:
    return slug in RESERVED_SLUGS or slug.strip("_") == ""
