"""HTTP load in a separate process: ``wrk`` when it is installed, else this module's own
keep-alive HTTP/1.1 generator (``python -m bench.loadgen URL ...``, asyncio streams on
uvloop, JSON on stdout). Both run a fixed number of seconds and stop by themselves. Given
``paths``, every request goes to one of them picked at random (wrk: a Lua script)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, float]:
    result: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M)
        result[f"p{pct}_ms"] = _ms(match.group(1)) if match else float("nan")
    total = re.search(r"(\d+) requests in", output)
    result["requests"] = float(total.group(1)) if total else 0.0
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["errors"] = float(bad.group(1) if bad else 0) + (sum(map(float, errors.groups())) if errors else 0.0)
    return result


def _wrk_script(paths: list[str]) -> str:
    """A wrk script sending each request to a random one of ``paths`` (with the -H headers)."""
    quoted = ",".join(json.dumps(path) for path in paths)  # JSON strings of ASCII paths are Lua strings
    return (
        f"local paths = {{{quoted}}}\n"
        "math.randomseed(os.time())\n"
        'request = function() return wrk.format("GET", paths[math.random(#paths)]) end\n'
    )


def run_load(
    url: str, headers: dict[str, str], *, connections: int, seconds: float, paths: list[str] | None = None
) -> dict[str, float | str]:
    """Load ``url`` (with ``paths``: a random one of them on ``url``'s host, each request)
    from a child process; requests/s, p50/p99 latency (ms), errors.
    ``BENCH_LOADGEN=python`` picks the fallback generator even where wrk is installed."""
    wrk = shutil.which("wrk") if os.environ.get("BENCH_LOADGEN", "auto") != "python" else None
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        if wrk:
            cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
            if paths:
                script = os.path.join(scratch, "paths.lua")
                with open(script, "w") as fh:
                    fh.write(_wrk_script(paths))
                cmd += ["-s", script]
            tool = "wrk"
        else:
            cmd = [sys.executable, "-m", "bench.loadgen", "-c", str(connections), "-d", str(seconds)]
            if paths:
                paths_file = os.path.join(scratch, "paths.json")
                with open(paths_file, "w") as fh:
                    json.dump(paths, fh)
                cmd += ["--paths", paths_file]
            tool = "bench.loadgen"
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    return {**(parse_wrk(out) if wrk else json.loads(out)), "tool": tool}


# --- the fallback generator ----------------------------------------------------------


async def _connection(host: str, port: int, requests: list[bytes], stop_at: float, latencies: list[float]) -> int:
    errors = 0
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(random.choice(requests))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if length is None:
                raise RuntimeError("responses without Content-Length are not supported")
            await reader.readexactly(int(length.group(1)))
            latencies.append(time.perf_counter() - start)
            errors += status >= 400
    finally:
        writer.close()
    return errors


async def _generate(
    url: str, headers: dict[str, str], connections: int, seconds: float, paths: list[str] | None = None
) -> dict[str, float]:
    parts = urlsplit(url)
    targets = paths or [parts.path + (f"?{parts.query}" if parts.query else "")]
    head = [f"Host: {parts.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
    requests = [("\r\n".join([f"GET {target} HTTP/1.1", *head]) + "\r\n\r\n").encode() for target in targets]
    latencies: list[float] = []
    started = time.perf_counter()
    stop_at = started + seconds
    errors = await asyncio.gather(
        *(
            _connection(parts.hostname or "127.0.0.1", parts.port or 80, requests, stop_at, latencies)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e3 if latencies else float("nan")

    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "requests": float(len(latencies)),
        "errors": float(sum(errors)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="A small keep-alive HTTP load generator.")
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=50)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("-H", "--header", action="append", default=[])
    parser.add_argument("--paths", help="a JSON list of paths on URL's host: each request takes a random one")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    paths = json.loads(Path(args.paths).read_text()) if args.paths else None
    coro = _generate(args.url, headers, args.connections, args.duration, paths)
    try:
        import uvloop

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
