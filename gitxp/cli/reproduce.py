"""`gitxp reproduce RUN`: re-run a run on its exact code and check that its metrics come back."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from ..present.output import dump_json, fmt_value, render_table
from ._options import format_option, repo_option


def _show_plan(p: Any) -> None:
    click.echo(
        f"Reproducing run {p.name} ({p.run_id[:12]}) from code {p.code_commit[:12]}", err=True
    )
    click.echo(
        f"  in:      <fresh checkout>/{p.cwd}" if p.cwd != "." else "  in:      <fresh checkout>",
        err=True,
    )
    click.echo(f"  command: {shlex.join(p.argv)}", err=True)
    if p.params:
        click.echo(
            "  params:  " + ", ".join(f"{k}={fmt_value(v)}" for k, v in p.params.items()), err=True
        )
    click.echo(
        "  env:     "
        + (" ".join(f"{k}={shlex.quote(v)}" for k, v in p.set_env.items()) or "(none replayed)"),
        err=True,
    )
    if p.unset_env:
        click.echo("  unset:   " + " ".join(p.unset_env), err=True)
    if p.redacted:
        click.echo("  not replayed (redacted when recorded): " + " ".join(p.redacted), err=True)
    by_reason: dict[str, list[str]] = {}
    for name, reason in p.refused_env.items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        click.echo(f"  not replayed ({reason}): " + " ".join(names), err=True)


@click.command("reproduce")
@click.argument("run")
@click.option(
    "--rtol",
    type=click.FloatRange(min=0),
    default=1e-6,
    show_default=True,
    help="Relative tolerance for each final metric.",
)
@click.option(
    "--atol",
    type=click.FloatRange(min=0),
    default=1e-9,
    show_default=True,
    help="Absolute tolerance for each final metric.",
)
@click.option("--dry-run", is_flag=True, help="Show what would run, and run nothing.")
@click.option(
    "--keep",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Check the code out into DIR (new or empty) and leave it there.",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not echo the command's output.")
@format_option("table", "json", default="table")
@repo_option
def reproduce_command(
    run: str,
    rtol: float,
    atol: float,
    dry_run: bool,
    keep: str | None,
    quiet: bool,
    fmt: str,
    repo_path: str,
) -> None:
    """Re-run RUN's recorded command on its exact code and compare every final metric.

    The code (its commit, or the snapshot of uncommitted changes) is checked
    out into a temporary directory: your work tree is not touched. The
    command runs with the params from its original command line and the
    recorded allow-listed environment variables, as a new run linked to the
    original (tag reproduces=ID). A metric matches when
    |new - old| <= atol + rtol * |old|.

    Exit status: 0 all metrics match, 1 some drifted (named), 2 the command failed.

    \b
    Examples:
      gitxp reproduce swift-otter-42
      gitxp reproduce swift-otter-42 --dry-run
      gitxp reproduce swift-otter-42 --rtol 1e-3 --keep /tmp/otter
      gitxp reproduce 01jdx3k9 --format json | jq .drifted
    """
    from ..ops.reproduce import reproduce

    if fmt == "table":
        from ..ops.reproduce import plan, refuse_bare

        if not dry_run:
            refuse_bare(repo_path)  # one line, before the plan is shown
        _show_plan(plan(run, repo=repo_path))
    result = reproduce(
        run,
        rtol=rtol,
        atol=atol,
        dry_run=dry_run,
        keep=keep,
        stream=not quiet and fmt != "json",
        repo=repo_path,
    )
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
        sys.exit(result.exit_status)
    if dry_run:
        click.echo("(dry run: nothing was run)", err=True)
        return
    _show_result(result, rtol, atol)
    sys.exit(result.exit_status)


def checks_table(checks: list[Any], with_diff: bool = True) -> str:
    """The table of a reproduction's metric checks: original, reproduced, (|diff|,) ok or DRIFT."""
    headers = ["metric", "original", "reproduced", *(["|diff|"] * with_diff), "result"]
    rows = []
    for c in checks:
        diff = ["-" if c.abs_diff is None else f"{c.abs_diff:.3g}"] if with_diff else []
        rows.append(
            [
                c.key,
                fmt_value(c.original),
                fmt_value(c.reproduced),
                *diff,
                "ok" if c.ok else "DRIFT",
            ]
        )
    return render_table(headers, rows)


def _show_result(result: Any, rtol: float, atol: float) -> None:
    """The human report of a reproduction: the checks, what changed, and the verdict."""
    assert result.run_name is not None  # only a dry run has no new run
    click.echo("")
    if result.checks:
        click.echo(checks_table(result.checks))
    for key, (old, new) in result.params_changed.items():
        click.echo(f"note: param {key} was {fmt_value(old)}, is now {fmt_value(new)}")
    if result.packages_changed:
        changed = ", ".join(
            f"{k} {v[0] or '-'} -> {v[1] or '-'}"
            for k, v in list(result.packages_changed.items())[:8]
        )
        more = len(result.packages_changed) - 8
        click.echo(f"note: packages differ: {changed}" + (f" (+{more} more)" if more > 0 else ""))
    if result.kept:
        click.echo(f"the checkout is kept in {result.kept}")
    if result.exit_status == 2:
        click.echo(
            f"FAILED: the command ended {result.status} (exit code {result.exit_code}); "
            f"see `gitxp show {shlex.quote(result.run_name)}`",
        )
    elif result.drifted:
        click.echo(
            f"DRIFT: {', '.join(result.drifted)} differ beyond rtol={rtol:g} atol={atol:g} "
            f"(new run {result.run_name}; compare with "
            f"`gitxp diff {shlex.quote(result.plan.name)} {shlex.quote(result.run_name)}`)"
        )
    else:
        click.echo(
            f"REPRODUCED: {_matched(len(result.checks), rtol, atol)} (new run {result.run_name})"
        )


def _matched(n: int, rtol: float, atol: float) -> str:
    """What matched, in words that agree with how many metrics were compared."""
    if n == 0:
        return "the command finished; the original run logged no metrics to compare"
    what = "its 1 metric matches" if n == 1 else f"all {n:,} metrics match"
    return f"{what} within rtol={rtol:g} atol={atol:g}"
