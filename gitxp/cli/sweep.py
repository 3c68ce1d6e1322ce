"""`gitxp sweep -p KEY=V1,V2 ... -- CMD`: a grid or random search through `gitxp run`."""

from __future__ import annotations

import sys
from typing import Any

import click

from .._text import count
from ..present.output import dump_json, fmt_duration, fmt_value, render_table
from ._options import format_option, repo_option


@click.command(
    "sweep",
    context_settings={"allow_interspersed_args": False},  # options stop at CMD
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="A param and the values to try (typed like `gitxp run -p`). Repeatable.",
)
@click.option(
    "--random",
    "random_n",
    type=int,
    default=None,
    metavar="N",
    help="Run N random points of the grid.",
)
@click.option("--seed", type=int, default=None, help="Seed for --random.")
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Runs at once."
)
@click.option("--metric", default=None, metavar="KEY", help="Rank the runs by this metric.")
@click.option(
    "--goal",
    type=click.Choice(["max", "min"]),
    default="max",
    show_default=True,
    help="Best is max or min.",
)
@click.option("-e", "--experiment", default=None, help="Experiment of the runs.")
@click.option("-n", "--name", default=None, help="Run names are NAME-1, NAME-2, ...")
@click.option(
    "--print-commands",
    is_flag=True,
    help="Print one `gitxp run` command per point instead of running them (for Slurm, parallel).",
)
@format_option("table", "json", default="table")
@repo_option
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
def sweep_command(
    params: tuple[str, ...],
    random_n: int | None,
    seed: int | None,
    jobs: int,
    metric: str | None,
    goal: str,
    experiment: str | None,
    name: str | None,
    print_commands: bool,
    fmt: str,
    repo_path: str,
    cmd: tuple[str, ...],
) -> None:
    """Run CMD over a grid of params (or --random N points of it), J at a time.

    Each point is one `gitxp run`: its params are the run's params, and
    {KEY} in CMD is replaced by the point's value. Every run is tagged
    gitxp.sweep=<id>. The sweep ends with the runs ranked by --metric and
    exits 1 if any run failed.

    \b
    Examples:
      gitxp sweep -p lr=0.001,0.01,0.1 -p bs=32,64 --jobs 2 --metric acc -- python train.py
      gitxp sweep -p C=0.1,1,10 --random 2 --seed 0 -- python train.py --C {C}
      gitxp sweep -p lr=0.01,0.1 --print-commands -- python train.py > jobs.txt
      parallel -j 8 < jobs.txt        # or one line per Slurm array task; then gitxp push
    """
    from ..ops.sweep import parse_grid, plan, sweep, sweep_commands
    from ..tracking.options import RunOptions

    grid = parse_grid(params)
    argv = list(cmd)
    if print_commands:
        for line in sweep_commands(
            argv, grid, random=random_n, seed=seed, experiment=experiment, name=name
        ):
            click.echo(line)
        return

    def done(entry: dict[str, Any], n: int, total: int) -> None:
        if fmt == "json":
            return
        point = " ".join(f"{k}={fmt_value(v)}" for k, v in entry["params"].items())
        click.echo(
            f"[{n}/{total}] {entry['name']} {point}: {entry['status']} "
            f"in {fmt_duration(entry['wall_time'])}",
            err=True,
        )

    result = sweep(
        argv,
        plan(grid, random_n, seed),
        RunOptions(experiment=experiment),
        name=name,
        jobs=jobs,
        metric=metric,
        goal=goal,
        repo=repo_path,
        stream=jobs == 1 and fmt != "json",
        on_done=done,
    )
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
    else:
        keys = list(grid)
        headers = ["rank", "run", "id", "status", *keys]
        if metric:
            headers.append(f"metrics.{metric}")
        rows = []
        for i, r in enumerate(result.ranked, 1):
            cells = [str(i), r["name"], r["run_id"][:12], r["status"]]
            cells += [fmt_value(r["params"][k]) for k in keys]
            if metric:
                cells.append(fmt_value(r["value"]))
            rows.append(cells)
        click.echo(
            f"sweep {result.sweep_id}: {count(len(result.runs), 'run')}, {len(result.failed)} failed"
        )
        click.echo(render_table(headers, rows))
        if result.best is not None:
            click.echo(
                f"best: {result.best['name']} ({metric} = {fmt_value(result.best['value'])})"
            )
    if result.failed:
        sys.exit(1)
