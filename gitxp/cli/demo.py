"""`gitxp demo`: see gitxp work in a minute, in a directory of its own."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--path", type=click.Path(file_okay=False), default=None,
              help="Where to create the demo project (new or empty; default: a temp directory).")
def demo_command(path: str | None) -> None:
    """Create a small project, record a few runs in it, and show them.

    \b
    Examples:
      gitxp demo
      gitxp demo --path ./gitxp-demo
    """
    from ..demo import run_demo
    from .log import log_command

    target = run_demo(path, echo=click.echo)
    click.echo("")
    ctx = click.get_current_context()
    ctx.invoke(log_command, max_count=None, experiment=(), filter_=None,
               order_by=("metrics.acc DESC",), oneline=False, fmt="table", repo_path=target)
    click.echo("")
    click.echo(f"The runs live in {target} as git refs: try")
    click.echo(f"  cd {target}")
    click.echo("  gitxp log --oneline")
    click.echo("  gitxp show <run id or name>")
    click.echo("  git log --glob=refs/gitxp/runs --oneline")
