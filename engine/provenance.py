"""Where a project came from, as its export records it (``.forgeflow/answers.json`` and
``.forgeflow/manifest.json``): the template, its source, ref and commit, and the answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.templates import Template


def provenance(template: Template, answers: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The template's record, and the answers an export shows: all but a Copier template's
    secret ones (which Copier keeps out of its own answers file too)."""
    origin = template.origin
    record = {
        "id": template.id,
        "format": template.format,
        "version": template.version,
        "digest": template.digest,
        # A registered git source's (None for a directory template or a built-in).
        "source": origin.source if origin else None,
        "ref": origin.ref if origin else None,
        "commit": origin.commit if origin else None,
    }
    return record, {name: value for name, value in answers.items() if name not in template.secret_variables}
