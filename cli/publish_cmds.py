"""`tracekit publish`: push a built dataset and its card to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from tracekit_cli.apps import app
from tracekit_cli.common import QuietOpt, StoreOpt, open_store, out, print_result, set_quiet


@app.command()
def publish(
    name: Annotated[str, typer.Argument(help="A built dataset (see `tracekit datasets`).")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="ORG/NAME of the Hub dataset repo.")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Write the files that would be uploaded; upload nothing."),
    ] = False,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Folder for the files (default <dataset>/hub)."),
    ] = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Publish a dataset (Parquet per split, the card, the histogram) as a Hub dataset repo.
    The token comes from HF_TOKEN or `hf auth login` and is never written anywhere.

    Example: tracekit publish gsm8k-redi --repo-id my-org/gsm8k-redi --dry-run
    """
    from tracekit.publish.publish import PublishConfig, run_publish

    set_quiet(quiet)
    cfg = PublishConfig(
        name=name,
        repo_id=repo_id,
        private=private,
        dry_run=dry_run,
        output=str(output) if output else None,
    )
    with open_store(store) as s:
        result = run_publish(s, cfg)
    print_result(result, quiet)
    d = result.details
    if d.get("folder"):
        out.print(f"files in {d['folder']}: " + ", ".join(d.get("files", [])))
    if d.get("uploaded"):
        out.print(f"uploaded to https://huggingface.co/datasets/{cfg.repo_id} ({d.get('url')})")
    elif dry_run:
        out.print(f"dry run: nothing uploaded to {cfg.repo_id}")
