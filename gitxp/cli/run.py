"""`gitxp run -- CMD`: record a run around any command."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from .._text import count
from ..errors import GitxpError
from ..present.output import dump_json, fmt_duration


def _warn_if_taken(name: str) -> bool:
    """Say so when the name is in use: `gitxp show NAME` would then be ambiguous."""
    from ..store.repo import open as open_repo

    try:
        with open_repo(".") as repo:
            if repo.git.bare:
                return False  # launch() refuses, before anything is written
            taken = [r["id"] for r in repo.rows() if r.get("name") == name]
    except GitxpError:
        return False  # not a repository: launch() reports that properly
    if taken:
        click.echo(
            f"gitxp: warning: a run named {name!r} exists already ({taken[0][:12]}); "
            "refer to these runs by id",
            err=True,
        )
    return bool(taken)


@click.command(
    "run",
    context_settings={"allow_interspersed_args": False},  # options stop at CMD
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
    "--no-capture",
    is_flag=True,
    help="Do not store CMD's output in the run (for commands that print secrets).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="How to report the run on stderr when CMD ends; json has stable keys.",
)
@click.option(
    "--system-metrics",
    "system_metrics",
    flag_value=True,
    default=None,
    help="Record CPU, memory, disk, network and GPU use of CMD as system/ metrics "
    "(also GITXP_SYSTEM_METRICS=1).",
)
@click.option(
    "--system-metrics-seconds",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Sampling interval for --system-metrics (default: $GITXP_SYSTEM_METRICS_SECONDS or 10).",
)
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
def run_command(
    experiment: str | None,
    name: str | None,
    params: tuple[str, ...],
    tags: tuple[str, ...],
    note: str | None,
    quiet: bool,
    no_capture: bool,
    fmt: str,
    system_metrics: bool | None,
    system_metrics_seconds: float | None,
    cmd: tuple[str, ...],
) -> None:
    """Run CMD and record it as a run: params, output, exit code, code and environment.

    Inside CMD, gitxp.active_run() is this run (its params are the -p values),
    and gitxp.log_metric() or gitxp.start_run() add to it instead of starting
    another. gitxp exits with CMD's exit code. The run is FINISHED when CMD
    exits 0, FAILED otherwise, KILLED when CMD is stopped by Ctrl-C or a
    signal (Ctrl-C reaches CMD once; SIGTERM sent to gitxp is passed on; a
    signal CMD ignores, as a background job ignores SIGINT, leaves the
    status to how CMD ends).
    The last 1 MB of its output is stored in the run as output.log
    (git show refs/gitxp/runs/ID:output.log, or RunRecord.output in Python),
    with credentials replaced by [redacted]: known token shapes, private keys,
    passwords in URLs and query strings, Authorization headers, the values of
    secret-named settings and flags (API_KEY=..., --api-key ..., password: ...),
    and every value redacted from the command line or the environment. The
    terminal shows the output as printed. --no-capture stores none of it.

    \b
    Examples:
      gitxp run -- python train.py
      gitxp run -e iris -p C=0.5 -p penalty=l2 -t team=vision -- python train.py
      gitxp run -n baseline -m "before the refactor" -- make train
      gitxp run -q --format json -- ./eval.sh > /dev/null
      gitxp run --system-metrics --system-metrics-seconds 5 -- python train.py
    """
    from ..ops.launch import OUTPUT_CAP, ProcessOptions, launch_run
    from ..ops.pairs import parse_pairs
    from ..tracking.options import RunOptions

    options = RunOptions(
        experiment=experiment,
        name=name,
        params=parse_pairs(params, "param"),
        tags=parse_pairs(tags, "tag", typed=False),
        notes=note,
        system_metrics=system_metrics,
        system_metrics_seconds=system_metrics_seconds,
    )
    ambiguous = bool(name) and _warn_if_taken(str(name).strip())

    def started(run: Any) -> None:
        if fmt == "text":
            click.echo(
                f"gitxp: recording run {run.name} ({run.id[:12]}) in experiment {run.experiment}",
                err=True,
            )

    process = ProcessOptions(stream=not quiet, output_cap=0 if no_capture else OUTPUT_CAP)
    result = launch_run(list(cmd), options, process, on_start=started)
    if fmt == "json":
        click.echo(dump_json(result.to_dict()), err=True)
    elif not result.run_id:
        click.echo(
            f"gitxp: not recorded on this rank (only global rank 0 records; see "
            f"docs/distributed.md); exit code {result.exit_code}",
            err=True,
        )
    else:
        how = f"exit code {result.exit_code}"
        if result.signal:
            how += f", {result.signal}"
        click.echo(
            f"gitxp: run {result.name} {result.status} in {fmt_duration(result.wall_time)} "
            f"({how}); see `gitxp show {shlex.quote(result.run_id[:12] if ambiguous else result.name)}`",
            err=True,
        )
        if result.output_redacted:
            click.echo(
                f"gitxp: {count(result.output_redacted, 'secret-looking string')} "
                "replaced by [redacted] in the stored output.log",
                err=True,
            )
    sys.stdout.flush()
    sys.exit(result.exit_code)
