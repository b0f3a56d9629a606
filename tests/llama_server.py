"""A real OpenAI-compatible server for tests: llama-cpp-python's server serving the embedded
model's GGUF on 127.0.0.1 and a free port, started once per session and stopped at the end.

Import the fixture into a test module: `from tests.llama_server import llama_server  # noqa: F401`.
Tests using it are marked `server`; without llama-cpp-python they skip with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT_S = 180  # loading the GGUF takes seconds; a busy 2-core CI box needs margin


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Yields the base URL (http://127.0.0.1:PORT/v1)."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    from tracekit.models import gguf_path

    try:
        gguf = gguf_path()
    except Exception as e:
        pytest.skip(f"embedded GGUF unavailable: {e}")
    port = free_port()
    log_path: Path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed after the process ends)
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"llama.cpp server exited ({proc.returncode}):\n{log_path.read_text()[-2000:]}"
                )
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama.cpp server did not start in {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
