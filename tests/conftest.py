"""Shared fixtures. Tests run offline: nothing is fetched from the Hub at test time."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["TRACEKIT_QUIET"] = "1"
# one torch thread per process: several tests run model subprocesses beside pytest itself, and
# on 2 cores two spinning OpenMP pools each make generation 10x slower, not faster
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


@pytest.fixture
def store(tmp_path):
    from tracekit.store import Store

    s = Store(tmp_path / "traces.duckdb")
    yield s
    s.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as a safetensors folder (converted once per cache)."""
    from tracekit.models import ensure_default_model

    try:
        return ensure_default_model(quiet=True)
    except Exception as e:  # the package is missing: the model tier cannot run
        pytest.skip(f"embedded model unavailable: {e}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_model_dir) -> Path:
    """A tiny random Llama built from the embedded tokenizer: real shapes, milliseconds per step."""
    from tracekit.models import build_tiny_random_llama

    return build_tiny_random_llama(tmp_path_factory.mktemp("tiny-llama"))


def run_cli(*args: str, store: Path | None = None):
    """Invoke the CLI in-process and return (exit_code, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from tracekit_cli.main import main

    argv = list(args)
    if store is not None:
        argv += ["--store", str(store)]
    o, e = io.StringIO(), io.StringIO()
    with redirect_stdout(o), redirect_stderr(e):
        code = main(argv)
    return code, o.getvalue(), e.getvalue()
