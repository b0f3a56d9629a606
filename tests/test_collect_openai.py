"""The OpenAI-compatible backend against a small local HTTP server written here: it can ignore `n`,
return reasoning_content, answer 429 with Retry-After, 500s, hang past the client timeout, refuse a
key, and it counts requests in flight. Deterministic failure modes a real server cannot be made to
produce on demand; the real llama.cpp server is exercised in test_collect_server.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import run_cli
from tracekit.collect.collect import CollectConfig, run_collect
from tracekit.errors import TracekitError
from tracekit.store import Store
from tracekit.store.ids import prompt_id

Reply = tuple[int, dict[str, str], Any]


class FakeOpenAI:
    """A threaded HTTP server speaking /v1/chat/completions. `behave(n_request, body, headers)`
    may return a Reply to override the default completion."""

    def __init__(self) -> None:
        self.honor_n = False
        self.reasoning: str | None = None
        self.behave: Callable[[int, dict, dict], Reply | None] = lambda i, b, h: None
        self.requests: list[tuple[float, dict, dict]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold_until_in_flight = 0  # > 0: hold each request until this many are in flight
        self.hold_total = 1 << 30  # ... or until this many have arrived in all (the last wave)
        self.cond = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.cond:
                    n_request = len(fake.requests)
                    fake.requests.append((time.monotonic(), body, headers))
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    fake.cond.notify_all()
                    if fake.hold_until_in_flight:
                        fake.cond.wait_for(
                            lambda: (
                                fake.in_flight >= fake.hold_until_in_flight
                                or len(fake.requests) >= fake.hold_total
                            ),
                            timeout=10,
                        )
                try:
                    status, extra, payload = fake.behave(n_request, body, headers) or fake.complete(
                        body
                    )
                    data = (
                        payload.encode()
                        if isinstance(payload, str)
                        else json.dumps(payload).encode()
                    )
                    with fake.cond:
                        fake.in_flight -= 1
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 64  # the default backlog of 5 would delay the 6th connect by ~1 s

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def spec(self, model: str = "fake-model") -> str:
        return f"openai:{model}@{self.url}"

    def complete(self, body: dict) -> Reply:
        """A deterministic completion: words derived from the prompt and the seed, cut at
        max_tokens words (finish_reason length) like a real server."""
        user = body["messages"][-1]["content"]
        n = body.get("n", 1) if self.honor_n else 1
        choices = []
        for i in range(n):
            seed = body.get("seed", 0) + i
            words = f"seed {seed} says the answer is \\boxed{{{len(user) % 97}}}".split()
            cut = words[: body["max_tokens"]]
            message: dict[str, Any] = {"role": "assistant", "content": " ".join(cut)}
            if self.reasoning is not None:
                message["reasoning_content"] = self.reasoning
            choices.append(
                {
                    "index": i,
                    "message": message,
                    "finish_reason": "length" if len(cut) < len(words) else "stop",
                }
            )
        usage = {
            "prompt_tokens": len(user.split()),
            "completion_tokens": sum(len(c["message"]["content"].split()) for c in choices),
        }
        return 200, {}, {"id": "x", "object": "chat.completion", "choices": choices, "usage": usage}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    f = FakeOpenAI()
    f.thread.start()
    yield f
    f.server.shutdown()
    f.server.server_close()


def add_prompts(store: Store, n: int) -> list[str]:
    problems = [f"What is {i} plus {i + 1}? Show the steps." for i in range(n)]
    store.insert_rows(
        "prompts",
        [{"prompt_id": prompt_id(p), "source": "unit", "problem": p, "reference_answer": str(2 * i + 1)}
         for i, p in enumerate(problems)],
    )  # fmt: skip
    return [prompt_id(p) for p in problems]


def cfg(fake: FakeOpenAI, **kw: Any) -> CollectConfig:
    base: dict[str, Any] = dict(
        teachers=[fake.spec()],
        samples=1,
        max_tokens=64,
        backoff_base=0.01,
        request_timeout=5.0,
        max_retries=3,
    )
    base.update(kw)
    return CollectConfig(**base)


def test_n_is_emulated_when_the_server_ignores_it(store: Store, fake: FakeOpenAI) -> None:
    add_prompts(store, 3)
    res = run_collect(store, cfg(fake, samples=3, concurrency=1))
    assert res["traces"] == 9
    rows = store.fetchall(
        "SELECT prompt_id, sample_index, text, seed FROM traces ORDER BY prompt_id, sample_index"
    )
    assert [r[1] for r in rows] == [0, 1, 2] * 3
    # each sample was sampled with its own seed (seed + sample_index), so texts differ
    assert all(f"seed {r[1]} " in r[2] for r in rows)
    # first request per prompt asked for n=3; once the server was seen to ignore n, later prompts
    # go out as n=1 calls straight away
    ns = [b.get("n", 1) for _, b, _ in fake.requests]
    assert ns[0] == 3 and len(fake.requests) == 9
    assert ns[3:] == [1] * 6


def test_n_is_sent_once_when_the_server_honours_it(store: Store, fake: FakeOpenAI) -> None:
    fake.honor_n = True
    add_prompts(store, 2)
    res = run_collect(store, cfg(fake, samples=4))
    assert res["traces"] == 8
    assert len(fake.requests) == 2 and {b["n"] for _, b, _ in fake.requests} == {4}
    # usage counts all choices together: per-trace completion tokens add up to what was billed
    billed = sum(fake.complete(b)[2]["usage"]["completion_tokens"] for _, b, _ in fake.requests)
    assert store.scalar("SELECT sum(completion_tokens) FROM traces") == billed


def test_reasoning_content_goes_to_reasoning(store: Store, fake: FakeOpenAI) -> None:
    fake.reasoning = "First add, then check."
    add_prompts(store, 1)
    run_collect(store, cfg(fake))
    text, reasoning, answer, finish = store.fetchone(
        "SELECT text, reasoning, answer_text, finish_reason FROM traces"
    )
    assert reasoning == "First add, then check."
    assert answer == text and "\\boxed{" in answer and finish == "stop"


def test_truncation_and_usage(store: Store, fake: FakeOpenAI) -> None:
    add_prompts(store, 2)
    run_collect(store, cfg(fake, max_tokens=3, price_in=2.0, price_out=10.0))
    rows = store.fetchall(
        "SELECT finish_reason, prompt_tokens, completion_tokens, cost_usd FROM traces"
    )
    for finish, p, c, cost in rows:
        assert finish == "length" and c == 3 and p > 0
        assert cost == pytest.approx((p * 2.0 + c * 10.0) / 1e6)


def test_429_retry_after_is_honoured(store: Store, fake: FakeOpenAI) -> None:
    fake.behave = lambda i, b, h: (
        (429, {"Retry-After": "1"}, {"error": "slow down"}) if i == 0 else None
    )
    add_prompts(store, 1)
    res = run_collect(store, cfg(fake, backoff_base=0.0))
    assert res["traces"] == 1 and res["retries"] == 1
    (t0, _, _), (t1, _, _) = fake.requests
    assert t1 - t0 >= 0.9  # waited what the server asked, not the (zero) backoff


def test_500s_and_a_hang_are_retried(store: Store, fake: FakeOpenAI) -> None:
    def behave(i: int, body: dict, headers: dict) -> Reply | None:
        if i in (0, 1):
            return 500, {}, {"error": "boom"}
        if i == 2:
            time.sleep(2.5)  # past the client's 0.5 s timeout
        return None

    fake.behave = behave
    add_prompts(store, 1)
    res = run_collect(store, cfg(fake, request_timeout=0.5))
    assert res["traces"] == 1 and res["retries"] == 3 and res["errors"] == 0
    assert len(fake.requests) == 4


def test_failures_are_recorded_and_retried_next_run(store: Store, fake: FakeOpenAI) -> None:
    pids = add_prompts(store, 3)
    bad = pids[1]
    fake.behave = lambda i, b, h: (
        (500, {}, {"error": "overloaded"}) if "1 plus 2" in b["messages"][-1]["content"] else None
    )
    res = run_collect(store, cfg(fake, samples=2, max_retries=1))
    assert res["traces"] == 4 and res["errors"] == 2
    errs = store.fetchall(
        "SELECT prompt_id, sample_index, error FROM collect_errors ORDER BY sample_index"
    )
    assert [(e[0], e[1]) for e in errs] == [(bad, 0), (bad, 1)]
    assert "HTTP 500" in errs[0][2] and "overloaded" in errs[0][2]
    runs = store.fetchone("SELECT status, counts FROM runs WHERE run_id = ?", [res.run_id])
    assert runs[0] == "ok" and json.loads(runs[1])["counts"]["errors"] == 2

    fake.behave = lambda i, b, h: None  # the server recovered
    res2 = run_collect(store, cfg(fake, samples=2, max_retries=1))
    assert res2["traces"] == 2 and res2["skipped"] == 4
    assert store.count("collect_errors") == 0
    assert store.count("traces", f"prompt_id = '{bad}'") == 2


def test_auth_failure_stops_the_run(store: Store, fake: FakeOpenAI) -> None:
    fake.behave = lambda i, b, h: (401, {}, {"error": "invalid api key"})
    add_prompts(store, 5)
    with pytest.raises(TracekitError, match="HTTP 401"):
        run_collect(store, cfg(fake))
    assert store.scalar("SELECT status FROM runs WHERE stage = 'collect'") == "failed"
    assert len(fake.requests) <= 8  # stopped at once, not one failure per prompt


def test_a_dead_server_stops_after_consecutive_failures(store: Store, fake: FakeOpenAI) -> None:
    fake.behave = lambda i, b, h: (503, {}, {"error": "down"})
    add_prompts(store, 10)
    with pytest.raises(TracekitError, match="3 requests in a row failed"):
        run_collect(
            store,
            cfg(fake, max_retries=0, concurrency=1, max_consecutive_failures=3, batch_size=100),
        )
    assert store.count("collect_errors") == 3  # what failed was committed before stopping


def test_concurrency_8_means_8_requests_in_flight(store: Store, fake: FakeOpenAI) -> None:
    fake.hold_until_in_flight, fake.hold_total = 8, 16
    add_prompts(store, 16)
    res = run_collect(store, cfg(fake, concurrency=8))
    assert res["traces"] == 16 and res["retries"] == 0
    assert fake.max_in_flight == 8


def test_budget_stops_before_it_is_exceeded(store: Store, fake: FakeOpenAI) -> None:
    add_prompts(store, 6)
    # $1 per output token, max 5 tokens: each request may cost up to $5; $12 admits two
    c = cfg(fake, max_tokens=5, price_in=0.0, price_out=1e6, budget_usd=12.0, concurrency=4)
    res = run_collect(store, c)
    assert res.details["stopped"] == "budget"
    assert res["traces"] == 2
    assert store.scalar("SELECT sum(cost_usd) FROM traces") <= 12.0
    res2 = run_collect(store, c.model_copy(update={"budget_usd": 1000.0}))
    assert res2["traces"] == 4 and "stopped" not in res2.details


def test_budget_needs_a_price(store: Store, fake: FakeOpenAI) -> None:
    add_prompts(store, 1)
    with pytest.raises(TracekitError, match="needs a price"):
        run_collect(store, cfg(fake, budget_usd=1.0))
    assert len(fake.requests) == 0


def test_api_key_is_sent_but_never_stored_or_logged(
    tmp_path, fake: FakeOpenAI, monkeypatch
) -> None:
    secret = "sk-tracekit-test-9f8e7d6c5b4a"
    monkeypatch.setenv("TK_TEST_KEY", secret)

    def behave(i: int, body: dict, headers: dict) -> Reply | None:
        if "0 plus 1" in body["messages"][-1]["content"]:  # a server that echoes headers in errors
            return 400, {}, {"error": f"bad request, headers were {headers}"}
        return None

    fake.behave = behave
    path = tmp_path / "k.duckdb"
    with Store(path) as s:
        add_prompts(s, 3)
    code, stdout, stderr = run_cli(
        "collect", "--teacher", fake.spec(), "--api-key-env", "TK_TEST_KEY", "--samples", "1",
        "--max-retries", "0", store=path,
    )  # fmt: skip
    assert code == 0, stderr
    assert all(h.get("authorization") == f"Bearer {secret}" for _, _, h in fake.requests)
    export = tmp_path / "export"
    export.mkdir()
    with Store(path) as s:
        err = s.scalar("SELECT error FROM collect_errors")
        assert "***" in err and "authorization" in err  # the echoed header, redacted
        for table in ("traces", "runs", "collect_errors", "prompts"):
            s.execute(f"COPY {table} TO '{export / table}.jsonl' (FORMAT json)")
            s.execute(f"COPY {table} TO '{export / table}.parquet' (FORMAT parquet)")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 9
    needle = secret.encode()
    for f in files:
        assert needle not in f.read_bytes(), f"API key leaked into {f}"
    assert secret not in stdout and secret not in stderr


def test_missing_key_env_is_a_clear_error(store: Store, fake: FakeOpenAI, monkeypatch) -> None:
    monkeypatch.delenv("TK_NOT_SET", raising=False)
    add_prompts(store, 1)
    with pytest.raises(TracekitError, match="TK_NOT_SET"):
        run_collect(store, cfg(fake, api_key_env="TK_NOT_SET"))
