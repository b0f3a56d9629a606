"""How a trace becomes training text: the think-tag convention of the student and TRL's
conversational rows, written as SQL expressions so that formatting a million rows stays inside
DuckDB instead of a Python loop.

A student learns the reasoning markup it is shown, so the convention is chosen per student:
`think` (R1 / Qwen3 style), `thought` (Sky-T1 / Bespoke style), `plain` (no tags), `raw` (the
teacher's text exactly as written) or a custom template with `{reasoning}` and `{answer}`.
Traces without a separate reasoning part (reasoning IS NULL, e.g. GSM8K-style worked solutions)
keep their answer text as is: there is nothing to wrap.
"""

from __future__ import annotations

from tracekit.errors import ConfigError

THINK_FORMATS: dict[str, str] = {
    "think": "<think>\n{reasoning}\n</think>\n\n{answer}",
    "thought": (
        "<|begin_of_thought|>\n\n{reasoning}\n\n<|end_of_thought|>\n\n"
        "<|begin_of_solution|>\n\n{answer}\n\n<|end_of_solution|>"
    ),
    "plain": "{reasoning}\n\n{answer}",
}
RAW = "raw"


def lit(value: str) -> str:
    """A SQL string literal (DuckDB doubles single quotes; there are no backslash escapes)."""
    return "'" + value.replace("'", "''") + "'"


def template_for(think_format: str) -> str | None:
    """The template of a named convention or a custom one; None for `raw`."""
    if think_format == RAW:
        return None
    template = THINK_FORMATS.get(think_format, think_format)
    r, a = template.find("{reasoning}"), template.find("{answer}")
    if (
        r < 0
        or a < 0
        or a < r
        or template.count("{reasoning}") != 1
        or template.count("{answer}") != 1
    ):
        known = ", ".join([*THINK_FORMATS, RAW])
        raise ConfigError(
            f"think format {think_format!r} is neither a known convention ({known}) nor a"
            " template with one {reasoning} followed by one {answer}"
        )
    return template


def completion_sql(alias: str, think_format: str) -> str:
    """SQL text of the assistant turn of trace alias `alias` under the convention."""
    template = template_for(think_format)
    if template is None:
        return f"coalesce({alias}.text, '')"
    head, rest = template.split("{reasoning}", 1)
    mid, tail = rest.split("{answer}", 1)
    answer = f"coalesce({alias}.answer_text, {alias}.text, '')"
    wrapped = " || ".join(
        part
        for part in (
            lit(head) if head else "",
            f"{alias}.reasoning",
            lit(mid) if mid else "",
            f"coalesce({alias}.answer_text, '')",
            lit(tail) if tail else "",
        )
        if part
    )
    return f"(CASE WHEN {alias}.reasoning IS NULL THEN {answer} ELSE {wrapped} END)"


def prompt_messages_sql(problem: str, system_prompt: str | None) -> str:
    """The prompt as a list of chat messages (TRL's conversational format)."""
    user = f"{{'role': 'user', 'content': {problem}}}"
    if system_prompt:
        return f"[{{'role': 'system', 'content': {lit(system_prompt)}}}, {user}]"
    return f"[{user}]"


def assistant_messages_sql(content: str) -> str:
    return f"[{{'role': 'assistant', 'content': {content}}}]"
