"""Many hosts: two API processes and two workers, each with a data directory of its own,
sharing nothing but PostgreSQL, an S3-compatible store and Temporal. Projects created
through one API are read and downloaded through the other, and a worker killed mid-run
leaves the other to finish every project."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from io import BytesIO

from forgeflow.ports import free_ports
from tests.reliability.harness import Api, Stack, eventually, make_api_key, zip_manifest
from tests.s3server import TEST_CREDENTIALS, S3Bucket, object_keys

PROJECTS = 3


def host(stack: Stack, name: str) -> dict[str, str]:
    """A host's own environment: its data directory and its own copy of the templates."""
    root = stack.base / "hosts" / name
    shutil.copytree(stack.base / "templates", root / "templates")
    return {"FORGEFLOW_DATA_DIR": str(root / "data"), "FORGEFLOW_TEMPLATE_PATH": str(root / "templates")}


async def test_two_apis_two_workers_share_only_postgres_s3_and_temporal(
    make_stack, postgres_schema_url, s3_bucket: S3Bucket
):
    key = make_api_key(postgres_schema_url)
    stack = make_stack(postgres_schema_url, artifacts_url=s3_bucket.url, artifacts_endpoint_url=s3_bucket.endpoint)
    stack.env.update(TEST_CREDENTIALS)
    # Nothing is shared on disk: the stack's own data directory is never used by a host.
    stack.env["FORGEFLOW_DATA_DIR"] = str(stack.base / "nobody")
    await stack.start_temporal()
    worker_a = stack.start_worker(**host(stack, "worker-a"))
    stack.start_worker(**host(stack, "worker-b"))
    port_a, port_b = free_ports(2)
    await stack.start_api(port_a, **host(stack, "api-a"))
    await stack.start_api(port_b, **host(stack, "api-b"))

    async with (
        Api(stack, key.key, url=f"http://127.0.0.1:{port_a}") as via_a,
        Api(stack, key.key, url=f"http://127.0.0.1:{port_b}") as via_b,
    ):
        ids = [(await via_a.create())["id"] for _ in range(PROJECTS)]
        # Both workers take tasks from the one queue; kill one while tasks are running.
        await via_b.wait_events(ids[0], "task_succeeded", 2)
        worker_a.kill()
        assert not worker_a.alive

        for project_id in ids:
            ready = await via_b.wait_status(project_id, "ready", timeout=180)
            assert ready["artifact_ready"] is True
        digests = set()
        for project_id in ids:
            data = await via_b.artifact(project_id)  # checks X-Content-SHA256 against the bytes
            digests.add(hashlib.sha256(data).hexdigest())
            assert len(zip_manifest(data)["git"]["branches"]) == stack.modules
            with zipfile.ZipFile(BytesIO(data)) as zf:
                assert zf.testzip() is None
            # The other API serves the same bytes, and reads files out of the same ZIP.
            assert await via_a.artifact(project_id) == data
            listing = await via_a.http.get(f"/projects/{project_id}/files")
            assert listing.status_code == 200 and listing.json()["entries"], listing.text
            one = await via_a.http.get(f"/projects/{project_id}/files/m0001.txt")
            assert one.status_code == 200 and one.text.startswith("module 1 of Fanout"), one.text
        # Same template, same answers: the run a kill interrupted made the same ZIP as the others.
        assert len(digests) == 1

        # The artifacts are objects in the bucket, and in no host's data directory.
        keys = object_keys(s3_bucket)
        assert sum(k.endswith(".zip") and "/tasks/" not in k for k in keys) >= PROJECTS, keys
        for data_dir in (stack.base / "hosts").glob("*/data"):
            assert not list(data_dir.glob("artifacts/**/*.zip")), f"an artifact on a host's disk: {data_dir}"
        assert not (stack.base / "nobody").exists()

        async def all_tasks_done() -> bool:
            for project_id in ids:
                if any(t["status"] != "succeeded" for t in await via_b.tasks(project_id)):
                    return False
            return True

        await eventually(all_tasks_done, 30, "every task row to say succeeded")
