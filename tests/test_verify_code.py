"""The code verifier's sandbox: right, wrong, looping, memory-hungry and networked programs."""

from __future__ import annotations

import socket

import pytest

from tracekit.verify.code import Limits, check, extract_program, parse_tests

STDIO = {
    "type": "stdio",
    "cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 7\n", "output": "12"}],
}
LIMITS = Limits(timeout_s=1.5, memory_mb=256)


def _prog(body: str) -> str:
    return f"Here is my solution.\n\n```python\n{body}\n```\n"


def test_correct_program_passes() -> None:
    o = check(STDIO, _prog("a, b = map(int, input().split())\nprint(a + b)"), LIMITS)
    assert (o.status, o.correct, o.detail["passed"], o.detail["total"]) == ("ok", True, 2, 2)


def test_wrong_program_fails() -> None:
    o = check(STDIO, _prog("a, b = map(int, input().split())\nprint(a - b)"), LIMITS)
    assert (o.status, o.correct, o.extracted) == ("ok", False, "0/2")


def test_infinite_loop_times_out() -> None:
    o = check(
        {"type": "stdio", "cases": [{"input": "", "output": "1"}]},
        _prog("while True:\n    pass"),
        LIMITS,
    )
    assert o.status == "timeout" and o.correct is None
    assert o.detail["cases"][0]["status"] == "timeout"


def test_ten_gigabytes_stopped_by_memory_limit() -> None:
    o = check(
        {"type": "stdio", "cases": [{"input": "", "output": "done"}]},
        _prog("x = bytearray(10 * 1024**3)\nprint('done')"),
        LIMITS,
    )
    assert o.correct is False
    assert "MemoryError" in o.detail["cases"][0]["stderr"]


def test_socket_connection_fails() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        body = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"
        o = check(
            {"type": "stdio", "cases": [{"input": "", "output": "connected"}]}, _prog(body), LIMITS
        )
    finally:
        server.close()
    assert o.correct is False
    assert "connected" not in o.detail["cases"][0]["stderr"].split("stdout")[-1]


def test_assert_tests_count_each_case() -> None:
    tests = {"type": "assert", "cases": ["assert add(1, 2) == 3", "assert add(2, 2) == 5"]}
    o = check(tests, _prog("def add(a, b):\n    return a + b"), LIMITS)
    assert (o.correct, o.detail["passed"], o.detail["total"]) == (False, 1, 2)
    assert o.detail["cases"][1]["status"] == "fail"


@pytest.mark.parametrize(
    ("meta", "kind"),
    [
        ({"tests": {"type": "stdio", "cases": []}}, "stdio"),
        ('{"tests": [{"input": "1", "output": "1"}]}', "stdio"),
        ({"tests": {"type": "assert", "code": "assert True"}}, "assert"),
        ({"other": 1}, None),
        (None, None),
    ],
)
def test_parse_tests(meta, kind) -> None:
    t = parse_tests(meta)
    assert (t["type"] if t else None) == kind


def test_no_code_block_is_no_answer() -> None:
    assert extract_program("I would write a loop.") is None
    o = check(STDIO, "I would write a loop.", LIMITS)
    assert (o.status, o.correct) == ("no_answer", False)
