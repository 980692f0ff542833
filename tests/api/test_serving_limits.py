"""The API as `forgeflow api` serves it (a process of its own, as in the dev stack), against
clients that cost memory or connections (issue 13, finding 11): one large file read several
times at once, and clients that send their headers or body a byte at a time."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forgeflow.ports import free_port
from forgeflow.settings import Settings
from tests.api.test_files_security import store_zip

REPO = Path(__file__).resolve().parents[2]
BIG = 64 * 1024 * 1024  # the large member: 6 copies in memory would be 384 MiB
PARALLEL = 6


class ApiProcess:
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url, self.process = url, process

    def peak_rss(self) -> int:
        """The process's peak resident memory so far (VmHWM), in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)


@pytest.fixture
def api_process(settings: Settings, tmp_path: Path) -> Iterator[ApiProcess]:
    port = free_port()
    env = {
        **os.environ,
        "FORGEFLOW_DATA_DIR": str(settings.data_dir),
        "FORGEFLOW_DATABASE_URL": str(settings.database_url),
        "FORGEFLOW_TEMPORAL_ADDRESS": str(settings.temporal_address),
        "FORGEFLOW_NAMESPACE": settings.namespace,
        "FORGEFLOW_LOG_LEVEL": "WARNING",
        # Short, so that the test is; the defaults are checked below.
        "FORGEFLOW_HTTP_HEADER_TIMEOUT_SECONDS": "1",
        "FORGEFLOW_HTTP_BODY_TIMEOUT_SECONDS": "2",
    }
    log = (tmp_path / "api.log").open("wb")
    command = [sys.executable, "-m", "forgeflow", "api", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.1)
        yield ApiProcess(url, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


async def test_a_large_file_read_six_times_at_once_stays_in_bounded_memory(api_process, settings, db, project_row):
    key, project_id = project_row()
    pattern = hashlib.sha256(b"forgeflow").digest() * 32  # 1 KiB, compressible like real output
    big = settings.data_dir / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    with big.open("wb") as out:
        for _ in range(BIG // len(pattern)):
            out.write(pattern)
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    store_zip(settings, db, project_id, {"README.md": b"hi\n", "data/big.bin": big})
    url = f"{api_process.url}/api/v1/projects/{project_id}/files/data/big.bin"
    auth = {"X-API-Key": key.key}
    async with httpx.AsyncClient(timeout=120) as http:
        # Warm up: the route, the ZIP code and the thread pool are loaded before measuring.
        assert (await http.get(url.replace("data/big.bin", "README.md"), headers=auth)).status_code == 200
        before = api_process.peak_rss()

        async def download() -> str:
            digest, size = hashlib.sha256(), 0
            async with http.stream("GET", url, headers=auth) as response:
                assert response.status_code == 200
                assert response.headers["content-disposition"].startswith("attachment")
                assert int(response.headers["content-length"]) == BIG
                async for chunk in response.aiter_raw():
                    digest.update(chunk)
                    size += len(chunk)
            assert size == BIG
            return digest.hexdigest()

        assert await asyncio.gather(*(download() for _ in range(PARALLEL))) == [expected] * PARALLEL
    grown = api_process.peak_rss() - before
    # Whole-member reads held at least one copy per download (6 x 64 MiB); streaming holds
    # a few chunks each. Less than half of ONE copy leaves room for allocator noise only.
    assert grown < BIG // 2, f"the API's peak RSS grew by {grown / 2**20:.0f} MiB"


def test_slow_timeouts_are_on_by_default():
    defaults = Settings()
    assert 0 < defaults.http_header_timeout_seconds <= 30
    assert 0 < defaults.http_body_timeout_seconds <= 120
    assert 0 < defaults.http_keep_alive_seconds <= 30


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bytes | None:
    """Send ``trickle`` a byte every 0.2 s until the server closes the connection; what it
    answered (b"" for a bare close), or None if it was still open after ``seconds``."""
    sock.settimeout(0.2)
    deadline, received, sent = time.monotonic() + seconds, b"", 0
    while time.monotonic() < deadline:
        try:
            if sent < len(trickle):
                sock.sendall(trickle[sent : sent + 1])
                sent += 1
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return received
        if not data:
            return received
        received += data
    return None


def test_slowloris_headers_idle_connections_and_slow_bodies_are_cut(api_process):
    host_port = api_process.host_port
    bound = 1 + 8  # the header timeout (1 s here) and a generous margin
    # Headers a byte at a time, never finished: cut, answered 408 in the error contract.
    with socket.create_connection(host_port) as sock:
        answer = closed_within(sock, bound, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 500)
    assert answer is not None, "slow headers were never cut"
    assert answer == b"" or (answer.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in answer)
    # A connection that never sends anything.
    with socket.create_connection(host_port) as sock:
        assert closed_within(sock, bound) is not None, "an idle connection was never cut"
    # A body a byte at a time: cut once the body timeout (2 s here) passes.
    with socket.create_connection(host_port) as sock:
        head = b"POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(head + b"X-API-Key: ff_x\r\nContent-Length: 1000\r\n\r\n")
        assert closed_within(sock, 2 + 8, b"{" + b" " * 998 + b"}") is not None, "a slow body was never cut"
    # Headers beyond the cap: refused at once, not buffered.
    with socket.create_connection(host_port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 200_000)
        answer = closed_within(sock, 5)
    assert answer is not None and (answer == b"" or answer.startswith(b"HTTP/1.1 431"))
    # Clients that send promptly are served, twice over one kept-alive connection.
    with socket.create_connection(host_port) as sock:
        sock.settimeout(5)
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock) == (200, b'{"status":"ok"}')


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length, read off the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length")
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), body
