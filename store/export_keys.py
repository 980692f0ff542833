"""Where a run's export lives in the artifact store, beside its ZIP: the git bundle the
export writes, and the ZIP with the project's ``.git`` the API makes from the two."""

from __future__ import annotations


def bundle_key(artifact_key: str) -> str:
    return artifact_key.removesuffix(".zip") + ".bundle"


def with_git_key(artifact_key: str) -> str:
    return artifact_key.removesuffix(".zip") + ".with-git.zip"
