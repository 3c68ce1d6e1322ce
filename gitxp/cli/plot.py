"""`gitxp plot`: a metric of some runs as an image, or a sparkline in the terminal."""

from __future__ import annotations

import click

from ..present.output import dump_json
from ._options import format_option, repo_option


@click.command("plot")
@click.argument("runs", nargs=-1, required=True)
@click.option("-m", "--metric", required=True, help="The metric key to plot.")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    help="Write an image (.png, .svg or .pdf, by extension); needs gitxp[plot].",
)
@click.option("--logy", is_flag=True, help="Logarithmic y axis (images).")
@click.option("--title", help="Title of the image.")
@format_option("text", "json", default="text")
@repo_option
def plot_command(
    runs: tuple[str, ...],
    metric: str,
    out: str | None,
    logy: bool,
    title: str | None,
    fmt: str,
    repo_path: str,
) -> None:
    """Plot METRIC of one or more RUNS: an image for papers, or a text sparkline.

    Without --out, prints one sparkline per run (no matplotlib needed).
    --format json prints the (downsampled) points instead.

    \b
    Examples:
      gitxp plot swift-otter calm-heron --metric loss
      gitxp plot 01jdx3k9 01jdx4m2 -m val/acc --out acc.png
      gitxp plot swift-otter -m loss --format json | jq '.[0].values | length'
    """
    from ..present.plot import curves, plot

    if fmt == "json":
        found = curves(repo_path, runs, metric)
        click.echo(
            dump_json(
                [
                    {
                        "id": c.run_id,
                        "name": c.name,
                        "key": c.key,
                        "total": c.total,
                        "steps": c.steps,
                        "values": c.values,
                    }
                    for c in found
                ]
            )
        )
        return
    result = plot(repo_path, runs, metric, out=out, logy=logy, title=title)
    click.echo(f"wrote {result}" if out else result)
