"""`gitxp report`: write a self-contained HTML report."""

from __future__ import annotations

import click

from ._options import repo_option


@click.command("report")
@click.argument("experiment", required=False)
@click.option(
    "-o",
    "--out",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False, writable=True),
    help="File to write.",
)
@click.option("-f", "--filter", "filter_", metavar="EXPR", help="Only runs matching EXPR.")
@click.option(
    "-n",
    "--max-runs",
    type=click.IntRange(1, 5000),
    default=200,
    show_default=True,
    help="At most N runs (newest first).",
)
@repo_option
def report_command(
    experiment: str | None, out: str, filter_: str | None, max_runs: int, repo_path: str
) -> None:
    """Write one self-contained HTML file of EXPERIMENT's runs (default: all runs).

    The file has the runs table, every metric's curves and a
    parallel-coordinates plot, with plotly.js and the data inlined: it opens
    offline, in any browser, attached to a pull request or an email. Needs
    the `ui` extra: pip install 'gitxp[ui]'.

    \b
    Examples:
      gitxp report mnist --out mnist.html
      gitxp report --filter "metrics.acc > 0.9" -n 20 -o best.html
    """
    import os

    from ..present.report import report

    path = report(repo_path, experiment, out, filter=filter_, max_runs=max_runs)
    size = os.path.getsize(path)
    click.echo(f"wrote {path} ({size / 1e6:.1f} MB)")
