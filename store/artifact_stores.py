"""The artifact store the settings name: ``$FORGEFLOW_DATA_DIR/artifacts`` by default (API
hosts and workers must then share that directory), or the S3-compatible bucket of
``FORGEFLOW_ARTIFACTS_URL``. Opening connects to nothing: a process starts while the store
is down, and each use says so until it is back."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from store.artifacts import ArtifactStore, LocalArtifactStore, parse_s3_url

if TYPE_CHECKING:
    from forgeflow.settings import Settings

MIB = 1 << 20
log = logging.getLogger("forgeflow.artifacts")


def open_artifact_store(settings: Settings) -> ArtifactStore:
    if settings.artifacts_url is None:
        return LocalArtifactStore(settings.artifact_dir)
    # boto3 is imported only by processes that use it.
    from store.artifact_cache import ArtifactCache
    from store.artifacts_s3 import S3ArtifactStore, make_client

    # A connection for each thread that may call at once: activity threads in a worker,
    # the request threads (anyio's 40) in an API process.
    pool = max(40, settings.activity_threads)
    client = make_client(endpoint_url=settings.artifacts_endpoint_url, region=settings.artifacts_region, pool=pool)
    cache = ArtifactCache(settings.artifact_cache_dir, max_bytes=settings.artifacts_cache_mb * MIB)
    store = S3ArtifactStore(parse_s3_url(settings.artifacts_url), client=client, cache=cache)
    log.info("artifacts in the %s", store.name)
    return store
