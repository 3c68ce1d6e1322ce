"""`gitxp run -- CMD`: record a run around any command."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._output import dump_json, fmt_duration


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "-e",
    "--experiment",
    default=None,
    help="Experiment name (default: $GITXP_EXPERIMENT or 'default').",
)
@click.option(
    "-n", "--name", default=None, help="Run name (default: a generated one like swift-otter-42)."
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A param; VALUE is typed like YAML: 3 int, 0.25 float, true bool, else string. Repeatable.",
)
@click.option(
    "-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (string). Repeatable."
)
@click.option("-m", "--message", "note", default=None, metavar="NOTE", help="A note for the run.")
@click.option(
    "-q", "--quiet", is_flag=True, help="Do not echo CMD's output (it is still recorded)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="How to report the run on stderr when CMD ends; json has stable keys.",
)
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
def run_command(
    experiment: str | None,
    name: str | None,
    params: tuple[str, ...],
    tags: tuple[str, ...],
    note: str | None,
    quiet: bool,
    fmt: str,
    cmd: tuple[str, ...],
) -> None:
    """Run CMD and record it as a run: params, output, exit code, code and environment.

    Inside CMD, gitxp.active_run() is this run (its params are the -p values),
    and gitxp.log_metric() or gitxp.start_run() add to it instead of starting
    another. gitxp exits with CMD's exit code. The run is FINISHED when CMD
    exits 0, FAILED otherwise, KILLED when CMD is stopped by Ctrl-C or a
    signal (SIGINT, SIGTERM and SIGHUP sent to gitxp are passed on to CMD).
    The last 1 MB of its output is stored in the run as output.log
    (git show refs/gitxp/runs/ID:output.log, or RunRecord.output in Python).

    \b
    Examples:
      gitxp run -- python train.py
      gitxp run -e iris -p C=0.5 -p penalty=l2 -t team=vision -- python train.py
      gitxp run -n baseline -m "before the refactor" -- make train
      gitxp run -q --format json -- ./eval.sh > /dev/null
    """
    from ..launcher import launch
    from ..pairs import parse_pairs

    param_values = parse_pairs(params, "param")
    tag_values = parse_pairs(tags, "tag", typed=False)

    def started(run: Any) -> None:
        if fmt == "text":
            click.echo(
                f"gitxp: recording run {run.name} ({run.id[:12]}) in experiment {run.experiment}",
                err=True,
            )

    result = launch(
        list(cmd),
        experiment=experiment,
        name=name,
        params=param_values,
        tags=tag_values,
        notes=note,
        stream=not quiet,
        on_start=started,
    )
    if fmt == "json":
        click.echo(dump_json(result.to_dict()), err=True)
    else:
        how = f"exit code {result.exit_code}"
        if result.signal:
            how += f", {result.signal}"
        click.echo(
            f"gitxp: run {result.name} {result.status} in {fmt_duration(result.wall_time)} "
            f"({how}); see `gitxp show {result.name}`",
            err=True,
        )
    sys.stdout.flush()
    sys.exit(result.exit_code)
