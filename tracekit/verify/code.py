"""The code verifier: run the trace's program against the prompt's test cases in a subprocess.

Test cases live in `prompts.meta` under the key "tests" (docs/verify.md has the format):
  {"type": "stdio",  "cases": [{"input": "1 2\\n", "output": "3\\n"}, ...], "language": "python"}
  {"type": "assert", "cases": ["assert add(1, 2) == 3", ...]}   (or "code": "<one block>")
The program is the last fenced code block of the answer part.

What the sandbox is: a fresh temp directory as cwd and HOME, a scrubbed environment (no proxies,
no credentials), rlimits on address space, CPU seconds, file size and open files, a wall-clock
timeout that kills the process group, a new network namespace with no interfaces when the
kernel allows unprivileged `unshare -rn`, and a Python audit hook that refuses sockets, process
spawning and fork. What it is not: a security boundary against hostile code. The program runs
as the same user, can read files that user can read, and ctypes can step around the audit hook.
Run untrusted code at scale inside a container or VM (gVisor, Firecracker) as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from tracekit.verify.base import Outcome

NAME = "code"
VERSION = "code-1"

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+#-]*)[^\n]*\n(.*?)```", re.S)

# installed before the program runs; audit hooks cannot be removed from Python code
_BOOT = r"""
import sys, runpy
_BLOCKED = ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
            "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn",
            "os.spawn", "pty.spawn")
def _hook(event, args):
    if event.startswith(_BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")
sys.addaudithook(_hook)
sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
"""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_mb: int = 512
    file_mb: int = 16


@dataclass(frozen=True)
class CaseResult:
    status: str  # pass | fail | timeout | error
    seconds: float
    stderr: str = ""


class Runner(Protocol):
    """A language runner: write the program into `workdir`, run it with stdin, return what
    happened. Python is the one shipped; others plug in here by language name."""

    def command(self, workdir: Path) -> list[str]: ...

    def prepare(self, program: str, workdir: Path) -> None: ...


class PythonRunner:
    def prepare(self, program: str, workdir: Path) -> None:
        (workdir / "main.py").write_text(program, encoding="utf-8")
        (workdir / "_boot.py").write_text(_BOOT, encoding="utf-8")

    def command(self, workdir: Path) -> list[str]:
        return [sys.executable, "-I", "-B", "_boot.py"]


RUNNERS: dict[str, Runner] = {
    "python": PythonRunner(),
    "py": PythonRunner(),
    "python3": PythonRunner(),
}


@lru_cache(maxsize=1)
def netns_available() -> bool:
    """Whether `unshare -rn` works here (user namespaces may be disabled in containers)."""
    exe = shutil.which("unshare")
    if not exe:
        return False
    try:
        r = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=5)
    except Exception:
        return False
    return r.returncode == 0


def _limits_fn(limits: Limits):
    def apply() -> None:
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(limits.timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        fsize = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _env(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run_program(
    program: str, stdin: str = "", language: str = "python", limits: Limits | None = None
) -> tuple[CaseResult, str]:
    """Run once in a fresh temp dir; returns (result with status pass/error/timeout by exit code,
    stdout). Comparing stdout with an expected output is the caller's job."""
    import time

    limits = limits or Limits()
    runner = RUNNERS.get(language.lower())
    if runner is None:
        return CaseResult("error", 0.0, f"no runner for language {language!r}"), ""
    with tempfile.TemporaryDirectory(prefix="tk-code-") as tmp:
        work = Path(tmp)
        runner.prepare(program, work)
        cmd = runner.command(work)
        if netns_available():
            cmd = ["unshare", "-rn", *cmd]
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            env=_env(tmp),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_limits_fn(limits),
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(stdin.encode(), timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            return CaseResult(
                "timeout", time.monotonic() - t0, f"killed after {limits.timeout_s:g}s"
            ), ""
        except BaseException:
            _kill_group(proc)
            raise
        seconds = time.monotonic() - t0
    stderr = err.decode("utf-8", "replace")[-1000:]
    if proc.returncode != 0:
        if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return CaseResult("timeout", seconds, stderr or "CPU limit"), ""
        return CaseResult("error", seconds, stderr or f"exit code {proc.returncode}"), ""
    return CaseResult("pass", seconds, stderr), out.decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def extract_program(answer: str | None, language: str = "python") -> str | None:
    """The last fenced block tagged with the language (or untagged)."""
    if not answer:
        return None
    blocks = [(lang.lower(), body) for lang, body in _FENCE_RE.findall(answer)]
    tagged = [b for lang, b in blocks if lang in (language, "py", "python3", "")]
    chosen = tagged or [b for _, b in blocks]
    return chosen[-1] if chosen else None


def parse_tests(meta: Any) -> dict[str, Any] | None:
    """The `tests` entry of prompts.meta (a dict or a JSON string), or None."""
    if meta is None:
        return None
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            return None
    if not isinstance(meta, dict):
        return None
    tests = meta.get("tests")
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except json.JSONDecodeError:
            return None
    if isinstance(tests, list):  # a bare list of stdio pairs
        tests = {"type": "stdio", "cases": tests}
    if not isinstance(tests, dict) or tests.get("type") not in ("stdio", "assert"):
        return None
    return tests


def _same_output(got: str, want: str) -> bool:
    norm = lambda s: "\n".join(line.rstrip() for line in s.strip().splitlines())  # noqa: E731
    return norm(got) == norm(want)


def case_count(tests: dict[str, Any]) -> int:
    if tests["type"] == "assert" and "code" in tests:
        return 1
    return len(tests.get("cases") or [])


def check(
    tests: dict[str, Any] | None, answer: str | None, limits: Limits | None = None
) -> Outcome:
    limits = limits or Limits()
    if not tests or case_count(tests) == 0:
        return Outcome("no_reference", None, None, {"reason": "prompt has no test cases"})
    language = str(tests.get("language", "python"))
    program = extract_program(answer, language)
    if program is None:
        return Outcome("no_answer", False, None, {"reason": "no code block in the answer"})
    results: list[CaseResult] = []
    if tests["type"] == "stdio":
        for case in tests["cases"]:
            res, out = run_program(program, str(case.get("input", "")), language, limits)
            if res.status == "pass" and not _same_output(out, str(case.get("output", ""))):
                res = CaseResult("fail", res.seconds, f"stdout {out[:200]!r}")
            results.append(res)
    else:
        snippets = [tests["code"]] if "code" in tests else list(tests["cases"])
        for snippet in snippets:
            res, _ = run_program(program + "\n\n" + str(snippet) + "\n", "", language, limits)
            if res.status == "error" and "AssertionError" in res.stderr:
                res = CaseResult("fail", res.seconds, res.stderr)
            results.append(res)
    passed = sum(r.status == "pass" for r in results)
    total = len(results)
    detail = {
        "passed": passed,
        "total": total,
        "language": language,
        "sandbox": "netns+rlimits" if netns_available() else "rlimits+audit-hook",
        "cases": [
            {"status": r.status, "seconds": round(r.seconds, 3), "stderr": r.stderr[-300:]}
            for r in results[:20]
        ],
    }
    if passed == total:
        return Outcome("ok", True, f"{passed}/{total}", detail)
    failed = [r for r in results if r.status in ("fail", "error")]
    if not failed:  # only wall-clock/CPU limits hit: we cannot tell slow from wrong
        return Outcome("timeout", None, f"{passed}/{total}", detail)
    return Outcome("ok", False, f"{passed}/{total}", detail)


def deadline_s(tests: dict[str, Any] | None, limits: Limits) -> float:
    """The pool's deadline for one trace: every case may use its full wall clock."""
    n = case_count(tests) if tests else 0
    return max(1, n) * (limits.timeout_s + 0.5) + 2.0


def handle(payload: dict[str, Any]) -> Outcome:
    limits = Limits(**payload.get("limits", {}))
    return check(parse_tests(payload.get("meta")), payload.get("answer"), limits)
