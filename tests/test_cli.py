"""The CLI contract: exit codes, one-line errors, and an example in every command's help."""

from __future__ import annotations

import typer.main
from tracekit_cli.apps import app

from tests.conftest import run_cli


def _commands(group=None, prefix=()):
    cmd = typer.main.get_command(group or app)
    for name, sub in getattr(cmd, "commands", {}).items():
        yield (*prefix, name), sub
        if hasattr(sub, "commands"):
            yield from _walk(sub, (*prefix, name))


def _walk(cmd, prefix):
    for name, sub in cmd.commands.items():
        yield (*prefix, name), sub
        if hasattr(sub, "commands"):
            yield from _walk(sub, (*prefix, name))


def test_every_command_has_help_with_an_example():
    missing = []
    for path, cmd in _commands():
        if hasattr(cmd, "commands") and not cmd.callback:
            continue
        code, out, err = run_cli(*path, "--help")
        assert code == 0, (path, err)
        if "Example" not in out:
            missing.append(" ".join(path))
    assert not missing, f"commands without an example in --help: {missing}"


def test_usage_error_exits_2_and_user_error_exits_1_without_traceback(tmp_path):
    code, out, err = run_cli("sql", "SELECT 1", "--bogus")
    assert code == 2 and "No such option" in err
    code, out, err = run_cli("sql", "SELEC nonsense", store=tmp_path / "missing.duckdb")
    assert code == 1 and "no store at" in err and "Traceback" not in err
    run_cli("init", store=tmp_path / "s.duckdb")
    code, out, err = run_cli("sql", "SELEC nonsense", store=tmp_path / "s.duckdb")
    assert code == 1 and err.startswith("error: SQL error") and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3
