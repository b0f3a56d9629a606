"""The candidate pool every builder starts from: traces matching `--where`, each with the chosen
verifier's verdict, whether a flag excludes it, whether it was truncated, and its length.

One narrow row per trace (no text), materialised once as a temp table: the funnel counts and the
builders' window functions all read it, and the full SQL that reproduces a build is recorded.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracekit.errors import ConfigError, TracekitError
from tracekit.progress import progress
from tracekit.select.formats import completion_sql, lit, template_for
from tracekit.store import Store

CAND = "_tk_cand"
TOKENS = "_tk_student_tokens"
DEFAULT_EXCLUDE = ["dup", "decontam:*", "safety:*"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_PATTERN = re.compile(r"^[A-Za-z0-9_.:*?/-]+$")


class SelectBase(BaseModel):
    """Options shared by every builder (the CLI flags of `tracekit select sft|pairs`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="dataset name: a folder name, also how `train` finds it")
    where: str | None = Field(None, description="SQL filter over v_traces columns")
    verifier: str | None = Field(
        None, description="whose verdicts count; default the final verdict"
    )
    exclude_flags: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDE),
        description="flag families (dup) or globs (decontam:*) whose traces/prompts are dropped",
    )
    exclude_truncated: bool = Field(True, description="drop traces cut at max tokens")
    max_tokens: int | None = Field(None, ge=1, description="drop completions longer than this")
    tokenizer: str | None = Field(None, description="student tokenizer SPEC for lengths")
    think_format: str = Field("think", description="think | thought | plain | raw | a template")
    system_prompt: str | None = None
    seed: int = 42
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    output: str | None = Field(
        None, description="dataset folder; default <store dir>/datasets/NAME"
    )
    license: str | None = Field(None, description="license for the card; default from the sources")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use letters, digits, '.', '_' or '-' (it becomes a folder name)")
        return v

    @field_validator("exclude_flags")
    @classmethod
    def _flags(cls, v: list[str]) -> list[str]:
        out = [p.strip() for p in v if p.strip() and p.strip().lower() != "none"]
        bad = [p for p in out if not _PATTERN.match(p)]
        if bad:
            raise ValueError(
                f"bad flag pattern(s) {bad}: use family names or globs like decontam:*"
            )
        return out

    @field_validator("think_format")
    @classmethod
    def _think(cls, v: str) -> str:
        try:
            template_for(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("where")
    @classmethod
    def _where(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or ";" in v):
            raise ValueError("must be one SQL boolean expression (no ';')")
        return v.strip() if v else None

    def token_spec(self) -> str | None:
        """Lengths are in the student's tokens when a tokenizer is named or a cap needs one."""
        if self.tokenizer:
            return self.tokenizer
        return "default" if self.max_tokens else None


def flag_condition(patterns: list[str], column: str = "flag") -> str:
    """`dup` matches the family (dup and dup:*), globs use * and ?, anything else is exact."""
    if not patterns:
        return "FALSE"
    parts = []
    for p in patterns:
        if "*" in p or "?" in p:
            like = p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = like.replace("*", "%").replace("?", "_")
            parts.append(f"{column} LIKE {lit(like)} ESCAPE '\\'")
        elif ":" in p:
            parts.append(f"{column} = {lit(p)}")
        else:
            esc = p.replace("%", "\\%").replace("_", "\\_")
            parts.append(f"({column} = {lit(p)} OR {column} LIKE {lit(esc + ':%')} ESCAPE '\\')")
    return "(" + " OR ".join(parts) + ")"


def verdict_source(store: Store, verifier: str | None) -> str:
    if verifier is None:
        return "SELECT trace_id, verifier, correct FROM v_final_verdicts"
    if not store.scalar("SELECT count(*) FROM verdicts WHERE verifier = ?", [verifier]):
        known = [r[0] for r in store.fetchall("SELECT DISTINCT verifier FROM verdicts ORDER BY 1")]
        raise ConfigError(
            f"no verdicts from verifier {verifier!r} in the store"
            f" (verifiers present: {', '.join(known) or 'none; run `tracekit verify` first'})"
        )
    return (
        "SELECT trace_id, verifier, correct FROM verdicts"
        f" WHERE verifier = {lit(verifier)} AND status <> 'no_reference'"
    )


def check_where(store: Store, where: str | None) -> None:
    if not where:
        return
    try:
        store.fetchall(f"SELECT count(*) FROM (SELECT * FROM v_traces WHERE ({where}) LIMIT 0)")
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"invalid --where {where!r}: {first}") from None


def score_names(store: Store, prefix: str) -> list[str]:
    return [
        r[0]
        for r in store.fetchall(
            "SELECT DISTINCT name FROM scores WHERE name LIKE ? ESCAPE '\\' ORDER BY 1",
            [prefix.replace("_", "\\_") + "%"],
        )
    ]


def candidates_sql(
    store: Store, cfg: SelectBase, scores: dict[str, str] | None = None, tokens: bool = False
) -> str:
    """The SELECT of the candidate pool. `scores` maps an output column to a score name."""
    excl = flag_condition(cfg.exclude_flags)
    where = (
        f"\n          WHERE t.trace_id IN (SELECT trace_id FROM v_traces WHERE ({cfg.where}))"
        if cfg.where
        else ""
    )
    length = f"{TOKENS}.tokens" if tokens else "length(t.text)"
    score_cols = "".join(f",\n               sc_{col}.value AS {col}" for col in (scores or {}))
    score_joins = "".join(
        f"\n          LEFT JOIN (SELECT trace_id, value FROM scores WHERE name = {lit(name)}) sc_{col}"
        f" ON sc_{col}.trace_id = t.trace_id"
        for col, name in (scores or {}).items()
    )
    token_join = (
        f"\n          LEFT JOIN {TOKENS} ON {TOKENS}.trace_id = t.trace_id" if tokens else ""
    )
    return f"""SELECT t.trace_id, t.prompt_id, t.teacher, t.sample_index,
               v.verifier, v.correct,
               (ft.trace_id IS NOT NULL OR fp.prompt_id IS NOT NULL) AS flagged,
               (coalesce(t.finish_reason = 'length', false) OR tr.trace_id IS NOT NULL) AS truncated,
               {length} AS len{score_cols}
          FROM traces t
          LEFT JOIN ({verdict_source(store, cfg.verifier)}) v ON v.trace_id = t.trace_id
          LEFT JOIN (SELECT DISTINCT trace_id FROM flags
                     WHERE trace_id IS NOT NULL AND {excl}) ft ON ft.trace_id = t.trace_id
          LEFT JOIN (SELECT DISTINCT prompt_id FROM flags
                     WHERE trace_id IS NULL AND {excl}) fp ON fp.prompt_id = t.prompt_id
          LEFT JOIN (SELECT DISTINCT trace_id FROM flags
                     WHERE flag = 'format:truncated' AND trace_id IS NOT NULL) tr
                 ON tr.trace_id = t.trace_id{score_joins}{token_join}{where}"""


@lru_cache(maxsize=4)
def load_tokenizer(spec: str) -> Any:
    """Only the tokenizer, never the weights: counting tokens must not cost a model load."""
    from transformers import AutoTokenizer

    from tracekit.models import parse_spec, resolve_local_path

    ms = parse_spec(spec)
    if ms.backend != "hf":
        raise ConfigError(f"tokenizer {spec!r} must be a transformers SPEC (default, hf:PATH)")
    try:
        return AutoTokenizer.from_pretrained(resolve_local_path(ms))
    except (OSError, ValueError) as e:
        raise TracekitError(f"cannot load tokenizer {spec!r}: {e}") from None


def count_student_tokens(store: Store, cfg: SelectBase, batch: int = 512) -> int:
    """Token counts of the formatted completions of usable candidates, in the student's
    tokenizer, into a temp table (lengths are filtered on, never truncated)."""
    spec = cfg.token_spec()
    assert spec is not None
    tok = load_tokenizer(spec)
    rows = store.fetchall(
        f"SELECT c.trace_id, {completion_sql('t', cfg.think_format)} FROM {CAND} c"
        " JOIN traces t USING (trace_id) WHERE c.correct IS NOT NULL AND NOT c.flagged"
    )
    store.execute(
        f"CREATE OR REPLACE TEMP TABLE {TOKENS} (trace_id VARCHAR PRIMARY KEY, tokens BIGINT)"
    )
    out: list[tuple[str, int]] = []
    with progress("tokenizing", len(rows), unit="traces") as bar:
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            enc = tok([r[1] for r in chunk], add_special_tokens=False)["input_ids"]
            out.extend((r[0], len(ids)) for r, ids in zip(chunk, enc, strict=False))
            bar.advance(len(chunk))
    if out:
        import pyarrow as pa

        tbl = pa.table({"trace_id": [r[0] for r in out], "tokens": [r[1] for r in out]})
        store.con.register("_tk_tok_in", tbl)
        try:
            store.execute(f"INSERT INTO {TOKENS} SELECT * FROM _tk_tok_in")
        finally:
            store.con.unregister("_tk_tok_in")
    return len(out)


def materialise(store: Store, cfg: SelectBase, scores: dict[str, str] | None = None) -> str:
    """Create the candidate temp table (counting student tokens when asked) and return the SQL
    that defines it, for the dataset's recorded selection."""
    check_where(store, cfg.where)
    sql = candidates_sql(store, cfg, scores, tokens=False)
    store.execute(f"CREATE OR REPLACE TEMP TABLE {CAND} AS {sql}")
    if cfg.token_spec():
        count_student_tokens(store, cfg)
        sql = candidates_sql(store, cfg, scores, tokens=True)
        store.execute(f"CREATE OR REPLACE TEMP TABLE {CAND} AS {sql}")
    return sql


def drop_temp(store: Store) -> None:
    for t in (CAND, TOKENS, "_tk_rows"):
        store.execute(f"DROP TABLE IF EXISTS {t}")
