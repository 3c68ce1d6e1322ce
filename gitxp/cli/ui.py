"""`gitxp ui`: browse runs in a local web application."""

from __future__ import annotations

import click

from ._options import repo_option


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
@click.option("-v", "--verbose", is_flag=True, help="Log every request.")
@repo_option
def ui_command(host: str, port: int, open_browser: bool, verbose: bool, repo_path: str) -> None:
    """Browse, chart and compare runs in a local, read-only web UI.

    Serves on 127.0.0.1 only, unless --host says otherwise (with a warning:
    anyone who can reach the address can read your runs). Needs the `ui`
    extra: pip install 'gitxp[ui]'.

    \b
    Examples:
      gitxp ui
      gitxp ui --port 9000 --open
      gitxp ui -C ~/projects/vision
    """
    from ..ui.server import ui

    ui(
        repo_path,
        host=host,
        port=port,
        open_browser=open_browser,
        quiet=not verbose,
        announce=lambda text: click.echo(text, err=True),
    )
