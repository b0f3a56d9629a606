"""Entry point: registers every command module and turns user errors into one-line messages.

Exit codes: 0 success, 1 a user error (message on stderr, no traceback unless --debug),
2 a usage error (bad option), 130 interrupted.
"""

from __future__ import annotations

import os
import sys

import click
import typer

try:  # typer >= 0.20 ships its own copy of click: its exceptions are distinct classes
    from typer._click import exceptions as _tclick
except ImportError:  # pragma: no cover - older typer uses click itself
    _tclick = click.exceptions
from pydantic import ValidationError
from tracekit_cli import (  # noqa: F401  (each module registers its commands on import)
    collect_cmds,
    eval_cmds,
    import_cmd,
    provenance_cmds,
    publish_cmds,
    report_cmds,
    run_cmds,
    score_cmds,
    select_cmds,
    store_cmds,
    train_cmds,
    verify_cmds,
)
from tracekit_cli.apps import app
from tracekit_cli.common import err

from tracekit.errors import TracekitError


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (all commands)."),
) -> None:
    if debug:
        os.environ["TRACEKIT_DEBUG"] = "1"
    if quiet:
        os.environ["TRACEKIT_QUIET"] = "1"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="tracekit")
    except (click.exceptions.UsageError, _tclick.UsageError) as e:
        e.show()
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("[red]interrupted[/]")
        return 130
    except (click.exceptions.ClickException, _tclick.ClickException) as e:
        e.show()
        return e.exit_code
    except ValidationError as e:
        if debug:
            raise
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "value"
        err.print(
            f"[red]error:[/] invalid {where}: {first['msg']}", highlight=False, soft_wrap=True
        )
        return 1
    except TracekitError as e:
        if debug or os.environ.get("TRACEKIT_DEBUG"):
            raise
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 1
    # typer turns Ctrl-C into exit code 130 and returns it in non-standalone mode
    return rv if isinstance(rv, int) else 0


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
