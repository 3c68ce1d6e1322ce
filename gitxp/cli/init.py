"""`gitxp init`: make a directory ready to record runs."""

from __future__ import annotations

import click


@click.command("init")
@click.argument("path", default=".", type=click.Path(file_okay=False))
def init_command(path: str) -> None:
    """Prepare PATH (default: here) to record runs; creates the git repository if needed.

    Recording never touches your branches, index or files: runs live on
    refs/gitxp/runs/*. gitxp's private cache goes to .git/gitxp/.

    \b
    Examples:
      gitxp init
      gitxp init my-project
    """
    from ..store.repo import init

    repo, created = init(path)
    root = repo.path
    repo.close()
    if created:
        click.echo(f"Initialized an empty git repository with gitxp in {root}")
    else:
        click.echo(f"gitxp is ready in {root}")
    click.echo(
        "Next: record a run with `gitxp run -- python train.py` or "
        "`with gitxp.start_run(): ...`, then `gitxp log`."
    )
