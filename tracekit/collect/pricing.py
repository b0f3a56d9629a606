"""Token prices for cost accounting and the `--budget-usd` cap, in USD per million tokens.

The built-in table holds list prices of a few common hosted teachers as of early 2025; prices change,
so users extend or override it: a JSON file named by TRACEKIT_PRICES ({"model": [in, out], ...}),
or `--price-in/--price-out` for the run. Local backends cost nothing unless a price is given.
A model with no known price gets cost NULL (unknown, not zero), and a budget cap refuses to run
without a price rather than spend blindly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tracekit.errors import ConfigError

# model name (as sent to the API) -> (input, output) USD per 1M tokens
BUILTIN_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o1": (15.00, 60.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "deepseek-chat": (0.27, 1.10),
    "deepseek-reasoner": (0.55, 2.19),
}


@dataclass(frozen=True)
class Price:
    input_per_m: float
    output_per_m: float

    def cost(
        self, prompt_tokens: int | None, completion_tokens: int | None, prompt_share: float = 1.0
    ) -> float:
        """`prompt_share`: the fraction of one prompt charge this trace carries (a call with n
        choices is billed the prompt once)."""
        p = (prompt_tokens or 0) * prompt_share
        return (p * self.input_per_m + (completion_tokens or 0) * self.output_per_m) / 1e6


def load_price_table() -> dict[str, tuple[float, float]]:
    table = dict(BUILTIN_PRICES)
    path = os.environ.get("TRACEKIT_PRICES")
    if path:
        try:
            extra = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"TRACEKIT_PRICES={path}: cannot read the price table ({e})"
            ) from None
        for model, pair in extra.items():
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                raise ConfigError(
                    f"TRACEKIT_PRICES={path}: {model!r} needs [input, output] USD per 1M tokens"
                )
            table[model] = (float(pair[0]), float(pair[1]))
    return table


def price_for(
    backend: str, model: str, price_in: float | None = None, price_out: float | None = None
) -> Price | None:
    """The price of one teacher: explicit prices win, then the table, then free for local
    backends; None means unknown."""
    if price_in is not None or price_out is not None:
        return Price(price_in or 0.0, price_out or 0.0)
    table = load_price_table()
    if model in table:
        return Price(*table[model])
    if backend != "openai":
        return Price(0.0, 0.0)
    return None
