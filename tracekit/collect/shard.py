"""Deterministic sharding of prompts across machines: shard i of n takes the prompts whose hashed
prompt_id falls in bucket i, so n machines collecting `--shard 0/n` ... `--shard n-1/n` into their
own stores cover every prompt exactly once, whatever order or filter each machine sees."""

from __future__ import annotations

import re

from tracekit.errors import ConfigError
from tracekit.store.ids import content_id

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(value: str) -> tuple[int, int]:
    """'i/n' with 0 <= i < n (zero-based, like a distributed rank)."""
    m = _SHARD.match(value or "")
    if not m:
        raise ConfigError(f"--shard expects i/n (e.g. 0/4), got {value!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {value}: need 0 <= i < n (shards are numbered 0..n-1)")
    return i, n


def shard_of(prompt_id: str, n: int) -> int:
    return int(content_id("shard", prompt_id)[:12], 16) % n


def in_shard(prompt_id: str, shard: tuple[int, int] | None) -> bool:
    return shard is None or shard_of(prompt_id, shard[1]) == shard[0]
