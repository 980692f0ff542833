"""What changed between two spec versions: a unified diff per document, as `git diff`
prints it, so a reviewer sees what feedback did to the spec before approving it."""

from __future__ import annotations

import difflib
from typing import Literal

from api.lifecycle_schemas import SpecDiff, SpecDocumentDiff
from store.models import SpecVersion

Change = Literal["added", "removed", "modified"]


def diff_spec_versions(*, old: SpecVersion, new: SpecVersion) -> SpecDiff:
    documents: list[SpecDocumentDiff] = []
    for name in sorted(set(old.documents) | set(new.documents)):
        before, after = old.documents.get(name), new.documents.get(name)
        if before == after:
            continue
        lines = difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            (after or "").splitlines(keepends=True),
            fromfile=f"a/{name}" if before is not None else "/dev/null",
            tofile=f"b/{name}" if after is not None else "/dev/null",
        )
        # A document without a final newline still diffs line by line, as git shows it.
        text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
        change: Change = "added" if before is None else "removed" if after is None else "modified"
        documents.append(SpecDocumentDiff(name=name, change=change, diff=text))
    return SpecDiff(from_version=old.version, to_version=new.version, documents=documents)
