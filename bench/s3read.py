"""S3 read throughput: one GetObject stream (the formatter's read until issue 13) against the
ranged GETs each pass now makes (dropfit.aws.s3's reader), on a local S3.

The local S3 is moto's server in a process of its own, reached through a proxy (a process of
its own too) that holds every connection to ``PROXY_MB_PER_S``: a scaled-down stand-in for S3,
whose connections each carry ~85-90 MB/s (S3's performance guide: "make one concurrent request
for each 85-90 MB/s of desired network throughput"). Both read the same object, interleaved,
and must hand over its exact bytes. Not measured over bare loopback: moto copies the whole
object for every ranged GET (its range handling slices the full value), so there the figure
would be moto's, not S3's nor the reader's.

``python -m bench.s3read proxy UPSTREAM_PORT PORT MB_PER_S`` is the proxy child.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.core import Context, Result, Target, benchmark, python_env

MB = 1_000_000
QUICK_BYTES, FULL_BYTES = 16 * MB, 128 * MB
PROXY_MB_PER_S = 20  # per connection; S3's is ~90, scaled down so the bench stays short
BUCKET, KEY = "bench-reads", "incoming/bench.csv"


# --- the proxy child ------------------------------------------------------------------------


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float) -> None:
    started, sent = time.monotonic(), 0
    try:
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
            sent += len(data)
            if rate:  # hold the connection to `rate` bytes per second since it started
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _proxy(upstream: int, port: int, mb_per_s: float) -> None:
    async def connection(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.gather(_pump(client_r, server_w, 0), _pump(server_r, client_w, mb_per_s * MB))

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# --- the benchmark --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after 30 s")


@contextmanager
def _child(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, *args],
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _client(port: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(s3={"addressing_style": "path"}),
    )


def single_stream(client: Any) -> tuple[float, str]:
    """One GetObject read in blocks, as each pass read the upload before: (seconds, sha256)."""
    from dropfit.aws.s3 import READ_BYTES

    digest = hashlib.sha256()
    started = time.perf_counter()
    body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"]
    while data := body.read(READ_BYTES):
        digest.update(data)
    body.close()
    return time.perf_counter() - started, digest.hexdigest()


def ranged(client: Any) -> tuple[float, str]:
    """A pass's read as the format function makes it now: (seconds, sha256)."""
    from dropfit.aws.s3 import READ_BYTES, Storage

    digest = hashlib.sha256()
    started = time.perf_counter()
    body = Storage(client).open_upload(BUCKET, KEY, None).open()
    while data := body.read(READ_BYTES):
        digest.update(data)
    body.close()
    return time.perf_counter() - started, digest.hexdigest()


@benchmark("s3_read")
def s3_read(ctx: Context) -> Iterator[Result]:
    """One GetObject stream vs the ranged reader, on moto's server behind a per-connection
    limit (same run, same object)."""
    from dropfit.aws.s3 import READ_PART_BYTES, READ_WINDOW

    size = QUICK_BYTES if ctx.quick else FULL_BYTES
    runs = 2 if ctx.quick else 3
    data = os.urandom(size)
    expected = hashlib.sha256(data).hexdigest()
    moto_port, proxy_port = _free_port(), _free_port()
    with _child("-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)) as moto:
        _wait_for(moto_port, moto)
        _client(moto_port).create_bucket(Bucket=BUCKET)
        _client(moto_port).put_object(Bucket=BUCKET, Key=KEY, Body=data)
        del data
        proxy_args = (str(moto_port), str(proxy_port), str(PROXY_MB_PER_S))
        with _child("-m", "bench.s3read", "proxy", *proxy_args) as proxy:
            _wait_for(proxy_port, proxy)
            client = _client(proxy_port)
            times: dict[str, list[float]] = {"single": [], "ranged": []}
            exact = True
            for _ in range(runs):  # interleaved: both see the same machine load
                for kind, read in (("single", single_stream), ("ranged", ranged)):
                    seconds, digest = read(client)
                    times[kind].append(seconds)
                    exact &= digest == expected
    single, ours = min(times["single"]), min(times["ranged"])
    yield Result(
        f"s3_read.throughput.{size // MB}MB",
        size / MB / ours,
        "MB/s",
        baseline=size / MB / single,
        # each connection of the window carries the limit: most of READ_WINDOW times one stream
        target=None if ctx.quick else Target("ratio", ">=", 2.5),
        detail={
            "seconds": round(ours, 3),
            "single_stream_seconds": round(single, 3),
            "runs": runs,
            "limit_mb_per_s_per_connection": PROXY_MB_PER_S,
            "part_bytes": READ_PART_BYTES,
            "window": READ_WINDOW,
            "memory_mib": (READ_WINDOW + 1) * READ_PART_BYTES / 2**20,
        },
    )
    yield Result(
        "s3_read.exact_bytes",
        1.0 if exact else 0.0,
        "bool",
        target=Target("value", "==", 1),
        check=True,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["proxy"]:
        asyncio.run(_proxy(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
