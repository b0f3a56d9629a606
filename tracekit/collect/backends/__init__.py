"""Teacher backends behind one interface (base.py): transformers, openai-compatible, vLLM."""

from tracekit.collect.backends.base import (
    Backend,
    BackendOptions,
    GenRequest,
    GenResult,
    Sample,
    Sampling,
    generate,
    make_backend,
)

__all__ = [
    "Backend",
    "BackendOptions",
    "GenRequest",
    "GenResult",
    "Sample",
    "Sampling",
    "generate",
    "make_backend",
]
