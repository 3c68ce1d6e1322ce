"""`gitxp export parquet|tensorboard`: runs out of git, for analysis tools and TensorBoard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._text import count
from ..present.output import dump_json
from ._options import repo_option

F = TypeVar("F", bound=Callable[..., Any])


@click.group("export")
def export_group() -> None:
    """Write runs out for other tools: a Parquet/CSV dataset, or TensorBoard event files.

    \b
    Examples:
      gitxp export parquet analysis/
      gitxp export parquet analysis/ --format csv -e iris
      gitxp export tensorboard tb/ && tensorboard --logdir tb/
    """


def _selection(func: F) -> F:
    """The -e/--experiment and -f/--filter options that choose which runs to export."""
    func = click.option(
        "-e", "--experiment", multiple=True, help="Only runs of this experiment (repeatable)."
    )(func)
    return click.option(
        "-f", "--filter", "filter_", metavar="EXPR", help="Only runs matching this filter."
    )(func)


@export_group.command("parquet")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="File format of the dataset.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@_selection
@repo_option
def parquet_command(
    outdir: str,
    fmt: str,
    as_json: bool,
    experiment: tuple[str, ...],
    filter_: str | None,
    repo_path: str,
) -> None:
    """Export runs and every metric point as a Hive-partitioned dataset.

    OUTDIR/runs.parquet has one row per run; OUTDIR/metrics/experiment=E/run=ID/
    holds its points (key, step, timestamp in ms, value). Exporting again
    rewrites only runs that changed.

    \b
    Examples:
      gitxp export parquet out/
      duckdb -c "select key, max(value) from read_parquet('out/metrics/**/*.parquet',
                 hive_partitioning=true) group by key"
      gitxp export parquet out-csv/ --format csv --filter "metrics.acc > 0.9"
    """
    from ..integrations.export import export_parquet

    result = export_parquet(
        outdir, repo_path, fmt=fmt, filter=filter_, experiment=list(experiment) or None
    )
    if as_json:
        click.echo(dump_json(result.to_dict()))
    else:
        click.echo(
            f"{count(len(result.written), 'run')} written ({result.points:,} points), "
            f"{len(result.unchanged)} unchanged, in {result.outdir}"
        )
        for note in result.notes:
            click.echo(f"note: {note}", err=True)


@export_group.command("tensorboard")
@click.argument("outdir", type=click.Path(file_okay=False))
@_selection
@repo_option
def tensorboard_command(
    outdir: str, experiment: tuple[str, ...], filter_: str | None, repo_path: str
) -> None:
    """Write TensorBoard event files: one directory per run, OUTDIR/<experiment>/<run>.

    Metric points become float64 scalars (steps, wall times and values
    exact), params hparams, notes text; the images, audio, histograms and
    other summaries kept under a run's tensorboard/ artifact are written back
    as logged. Runs whose names collide get <name>_<run id>; runs unchanged
    since the last export are not written again. Needs
    `pip install 'gitxp[tensorboard]'`.

    \b
    Examples:
      gitxp export tensorboard tb/
      tensorboard --logdir tb/
    """
    from ..integrations.tensorboard_export import export_tensorboard

    written = export_tensorboard(
        outdir, repo_path, filter=filter_, experiment=list(experiment) or None
    )
    click.echo(f"{count(len(written), 'run')} in {outdir}")
