"""`gitxp checkout RUN`: a run's exact code, in a new directory or on a new branch."""

from __future__ import annotations

import click

from .._text import count
from ..present.output import dump_json
from ._options import format_option, repo_option


@click.command("checkout")
@click.argument("run")
@click.option(
    "--path",
    "path",
    type=click.Path(file_okay=False),
    default=None,
    help="Write the code into this new or empty directory (your work tree is untouched).",
)
@click.option(
    "-b",
    "--branch",
    default=None,
    metavar="BRANCH",
    help="Create BRANCH at the run's code commit and switch to it.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With -b: save uncommitted work to refs/gitxp/saved/... first, then switch.",
)
@format_option("text", "json", default="text")
@repo_option
def checkout_command(
    run: str, path: str | None, branch: str | None, force: bool, fmt: str, repo_path: str
) -> None:
    """Get the exact code a run ran, uncommitted changes included.

    The code commit is HEAD at the time of the run, or the snapshot gitxp
    took of the work tree. Every path is checked before anything is
    written: a run fetched from someone else cannot write outside the
    directory, into .git, or through a symlink. gitxp never overwrites
    uncommitted work: -b refuses and lists the files; --force saves them to
    a ref first and prints how to restore them.

    \b
    Examples:
      gitxp checkout swift-otter-42 --path /tmp/otter
      gitxp checkout 01jdx3k9 -b try-otter
      gitxp checkout swift-otter-42 -b try-otter --force
    """
    from ..ops.checkout import checkout

    result = checkout(run, path=path, branch=branch, force=force, repo=repo_path)
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
        return
    if result.path:
        click.echo(
            f"Wrote {count(result.files, 'file')} of run {result.name} (code {result.code_commit[:12]}) "
            f"to {result.path}"
        )
        return
    if result.saved_ref:
        click.echo(f"Saved your uncommitted work to {result.saved_ref}")
        click.echo(f"  to get it back: {result.restore_hint}")
    click.echo(
        f"Switched to a new branch '{result.branch}' at {result.code_commit[:12]} "
        f"(the code of run {result.name})"
    )
