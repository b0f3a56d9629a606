"""The store's schema, as forward migrations.

Each migration is applied once, in order, inside one transaction, and recorded in
`schema_version`; opening an older store upgrades it. Never edit a released migration: append one.
Views are recreated on every open (they hold no data), so changing a view needs no migration.
"""

from __future__ import annotations

from tracekit.text.reasoning import answer_sql, reasoning_sql

# What is stored of a trace. `traces` is a view over this table that adds `reasoning` and
# `answer_text`, read out of `text` on demand: storing them as copies doubled the bytes every
# import and collect writes (and DuckDB's generated columns are evaluated on every insert, 10x
# slower than the insert itself, so a view it is). Only a reasoning that is not inside `text`
# (an API's reasoning_content) is stored, in reasoning_field.
_STORED = (
    "trace_id, prompt_id, teacher, teacher_revision, backend, sampling, seed, sample_index, text,"
    " finish_reason, prompt_tokens, completion_tokens, latency_ms, cost_usd, origin, meta, run_id"
)

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "initial schema",
        [
            """CREATE TABLE runs (
                run_id VARCHAR PRIMARY KEY,
                stage VARCHAR NOT NULL,
                status VARCHAR NOT NULL,          -- running | ok | failed | interrupted
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                config JSON,
                code_version VARCHAR,
                counts JSON,
                error VARCHAR
            )""",
            """CREATE TABLE prompts (
                prompt_id VARCHAR PRIMARY KEY,
                source VARCHAR,
                source_ref VARCHAR,
                problem VARCHAR NOT NULL,
                reference_answer VARCHAR,
                domain VARCHAR,
                split VARCHAR,
                meta JSON,
                run_id VARCHAR
            )""",
            """CREATE TABLE traces (
                trace_id VARCHAR PRIMARY KEY,
                prompt_id VARCHAR NOT NULL,
                teacher VARCHAR,
                teacher_revision VARCHAR,
                backend VARCHAR,
                sampling JSON,
                seed BIGINT,
                sample_index INTEGER,
                text VARCHAR,
                reasoning VARCHAR,
                answer_text VARCHAR,
                finish_reason VARCHAR,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                latency_ms DOUBLE,
                cost_usd DOUBLE,
                origin VARCHAR,                   -- generated | imported | student
                meta JSON,
                run_id VARCHAR
            )""",
            """CREATE TABLE verdicts (
                trace_id VARCHAR NOT NULL,
                verifier VARCHAR NOT NULL,
                verifier_version VARCHAR,
                correct BOOLEAN,
                extracted VARCHAR,
                status VARCHAR NOT NULL,          -- ok | no_answer | timeout | error | no_reference
                detail JSON,
                run_id VARCHAR,
                PRIMARY KEY (trace_id, verifier)
            )""",
            """CREATE TABLE scores (
                trace_id VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                value DOUBLE,
                detail JSON,
                run_id VARCHAR,
                PRIMARY KEY (trace_id, name)
            )""",
            """CREATE TABLE flags (
                flag_id VARCHAR PRIMARY KEY,      -- hash(prompt_id, trace_id, flag)
                prompt_id VARCHAR,
                trace_id VARCHAR,                 -- NULL for prompt-level flags
                flag VARCHAR NOT NULL,
                detail VARCHAR,
                run_id VARCHAR
            )""",
            """CREATE TABLE sentences (
                trace_id VARCHAR NOT NULL,
                idx INTEGER NOT NULL,
                start INTEGER,
                "end" INTEGER,
                text VARCHAR,
                logp_teacher DOUBLE,
                logp_student DOUBLE,
                logp_distilled DOUBLE,
                category VARCHAR,
                run_id VARCHAR,
                PRIMARY KEY (trace_id, idx)
            )""",
            """CREATE TABLE datasets (
                dataset_id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,            -- sft | redi | dpo | traces
                selection JSON,
                rows BIGINT,
                path VARCHAR,
                card_path VARCHAR,
                fingerprint VARCHAR,
                run_id VARCHAR,
                created_at TIMESTAMP
            )""",
            """CREATE TABLE dataset_rows (
                dataset_id VARCHAR NOT NULL,
                row_idx BIGINT NOT NULL,
                trace_id VARCHAR NOT NULL,
                pair_trace_id VARCHAR,
                split VARCHAR,
                PRIMARY KEY (dataset_id, row_idx)
            )""",
            """CREATE TABLE collect_errors (
                prompt_id VARCHAR NOT NULL,
                teacher VARCHAR NOT NULL,
                sample_index INTEGER,
                error VARCHAR,
                failed_at TIMESTAMP,
                run_id VARCHAR
            )""",
            """CREATE TABLE token_logprobs (
                trace_id VARCHAR PRIMARY KEY,
                tokens VARCHAR[],
                logprobs DOUBLE[],
                run_id VARCHAR
            )""",
            "CREATE INDEX traces_prompt ON traces(prompt_id)",
        ],
    ),
    (
        2,
        "traces becomes a view over traces_data; reasoning and answer_text are read out of text",
        [
            """CREATE TABLE traces_data (
                trace_id VARCHAR PRIMARY KEY,
                prompt_id VARCHAR NOT NULL,
                teacher VARCHAR,
                teacher_revision VARCHAR,
                backend VARCHAR,
                sampling JSON,
                seed BIGINT,
                sample_index INTEGER,
                text VARCHAR,
                reasoning_field VARCHAR,          -- a reasoning returned apart from text (API)
                finish_reason VARCHAR,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                latency_ms DOUBLE,
                cost_usd DOUBLE,
                origin VARCHAR,                   -- generated | imported | student
                meta JSON,
                run_id VARCHAR
            )""",
            f"""INSERT INTO traces_data ({_STORED}, reasoning_field)
                SELECT {_STORED},
                       CASE WHEN reasoning IS NOT NULL AND reasoning <> ''
                             AND reasoning IS DISTINCT FROM {reasoning_sql("text", None)}
                            THEN reasoning END
                FROM traces""",
            "DROP VIEW IF EXISTS v_traces",
            "DROP VIEW IF EXISTS v_prompt_stats",
            "DROP VIEW IF EXISTS v_teachers",
            "DROP INDEX IF EXISTS traces_prompt",
            "DROP TABLE traces",
            "CREATE INDEX traces_prompt ON traces_data(prompt_id)",
        ],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]

# logical tables that are views, and the table their rows are written to
WRITE_TABLES = {"traces": "traces_data"}

# Which verifier's verdict is "the" correctness of a trace when several exist: executable and
# symbolic checks outrank string matching, and a dataset's own labels (`source`) come last.
VERIFIER_PRIORITY = ["code", "math", "exact", "choice", "regex", "majority", "source"]


def _priority_case(column: str) -> str:
    whens = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(VERIFIER_PRIORITY))
    return f"CASE {column} {whens} ELSE {len(VERIFIER_PRIORITY)} END"


VIEWS: list[str] = [
    f"""CREATE OR REPLACE VIEW traces AS
        SELECT trace_id, prompt_id, teacher, teacher_revision, backend, sampling, seed,
               sample_index, text, {reasoning_sql()} AS reasoning, {answer_sql()} AS answer_text,
               finish_reason, prompt_tokens, completion_tokens, latency_ms, cost_usd, origin, meta,
               run_id, reasoning_field
        FROM traces_data
    """,
    f"""CREATE OR REPLACE VIEW v_final_verdicts AS
        SELECT trace_id, verifier, correct, status, extracted
        FROM verdicts
        WHERE status <> 'no_reference'
        QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY {_priority_case("verifier")}, verifier) = 1
    """,
    """CREATE OR REPLACE VIEW v_traces AS
        SELECT t.trace_id, t.prompt_id, p.source, p.split, p.domain, t.teacher, t.backend, t.origin,
               t.sample_index, t.finish_reason, t.prompt_tokens, t.completion_tokens,
               length(t.text) AS text_chars, length(t.reasoning) AS reasoning_chars,
               t.cost_usd, t.latency_ms,
               v.correct, v.verifier, v.status AS verdict_status, v.extracted,
               s.scores,
               coalesce(f.n_flags, 0) AS n_flags, f.flags,
               t.run_id
        FROM traces t
        JOIN prompts p USING (prompt_id)
        LEFT JOIN v_final_verdicts v USING (trace_id)
        LEFT JOIN (SELECT trace_id, map(list(name), list(value)) AS scores
                   FROM scores GROUP BY trace_id) s USING (trace_id)
        LEFT JOIN (SELECT trace_id, count(*) AS n_flags, list(DISTINCT flag ORDER BY flag) AS flags
                   FROM flags WHERE trace_id IS NOT NULL GROUP BY trace_id) f USING (trace_id)
    """,
    """CREATE OR REPLACE VIEW v_prompt_stats AS
        SELECT t.prompt_id, t.teacher,
               count(*) AS samples,
               count(v.correct) AS verified,
               count(*) FILTER (WHERE v.correct) AS positives,
               count(*) FILTER (WHERE v.correct = false) AS negatives,
               CASE WHEN count(v.correct) > 0
                    THEN count(*) FILTER (WHERE v.correct) / count(v.correct) END AS pass_rate
        FROM traces t LEFT JOIN v_final_verdicts v USING (trace_id)
        GROUP BY t.prompt_id, t.teacher
    """,
    """CREATE OR REPLACE VIEW v_teachers AS
        SELECT t.teacher,
               count(*) AS traces,
               count(DISTINCT t.prompt_id) AS prompts,
               count(v.correct) AS verified,
               count(*) FILTER (WHERE v.correct) AS correct,
               CASE WHEN count(v.correct) > 0
                    THEN count(*) FILTER (WHERE v.correct) / count(v.correct) END AS accuracy,
               quantile_cont(length(t.text), 0.5) AS chars_p50,
               quantile_cont(length(t.text), 0.9) AS chars_p90,
               quantile_cont(t.completion_tokens, 0.5) AS tokens_p50,
               quantile_cont(t.completion_tokens, 0.9) AS tokens_p90,
               count(*) FILTER (WHERE t.finish_reason = 'length') AS truncated,
               sum(t.cost_usd) AS cost_usd
        FROM traces t LEFT JOIN v_final_verdicts v USING (trace_id)
        GROUP BY t.teacher
    """,
]
