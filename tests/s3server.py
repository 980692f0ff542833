"""A real S3-compatible server for the tests: moto's server, as a process on 127.0.0.1, and
a TCP proxy in front of it that a test can close (the store "goes down": connections are
refused, open ones dropped) and open again on the same port with the data still there
(moto keeps its objects in the memory of its process)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from forgeflow.ports import free_port
from tests.support import tool_path

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# moto accepts any credentials; these are only ever sent to it.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "forgeflow-test",
    "AWS_SECRET_ACCESS_KEY": "forgeflow-test-secret-never-shown",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer:
    """``moto_server`` in a process of its own."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = log_dir / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        for _ in range(3):  # another process may take the free port before moto binds it
            self.port = free_port()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [tool_path("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._answers(timeout):
                return
            self.stop()
        raise RuntimeError(f"moto_server did not start; see {self.log_path}")

    def _answers(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/moto-api/", timeout=1)
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def unique_bucket() -> str:
    return f"ff-test-{uuid.uuid4().hex[:16]}"


class ClosableProxy:
    """A TCP proxy on 127.0.0.1 to ``upstream``. ``close()`` stops listening and cuts every
    connection (clients get ECONNREFUSED, as from a store that is down); ``open()`` listens
    on the same port again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._conns -= {src, dst}


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket on the test server, and a client to look into it."""

    name: str
    endpoint: str
    client: S3Client

    @property
    def url(self) -> str:
        return f"s3://{self.name}/forgeflow"  # under a prefix, as production would


def isolate_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test credentials, and nothing of the machine's own AWS set-up (profiles, files,
    endpoints, instance metadata)."""
    for name, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def new_bucket(endpoint: str) -> S3Bucket:
    import boto3  # only in the tests that use S3

    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = S3Bucket(name=unique_bucket(), endpoint=endpoint, client=client)
    client.create_bucket(Bucket=bucket.name)
    return bucket


def object_keys(bucket: S3Bucket) -> list[str]:
    listed = bucket.client.list_objects_v2(Bucket=bucket.name)
    return sorted(o["Key"] for o in listed.get("Contents", []))
