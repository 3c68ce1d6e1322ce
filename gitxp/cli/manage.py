"""Managing runs: `gitxp tag`, `note`, `rename`, `rm`, `gc` and `branch`."""

from __future__ import annotations

import shlex
import sys

import click

from .._text import count
from ..present.output import dump_json, fmt_time, render_table
from ._options import format_option, repo_option


@click.command("tag")
@click.argument("run")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option(
    "-d", "--delete", "remove", multiple=True, metavar="KEY", help="Remove this tag (repeatable)."
)
@format_option("text", "json", default="text")
@repo_option
def tag_command(
    run: str, pairs: tuple[str, ...], remove: tuple[str, ...], fmt: str, repo_path: str
) -> None:
    """Set or remove tags of a finished run (a new commit on its ref).

    \b
    Examples:
      gitxp tag swift-otter-42 best=yes reviewed=ada
      gitxp tag swift-otter-42 -d draft
    """
    from ..ops.manage import tag
    from ..ops.pairs import parse_pairs

    tags = tag(run, parse_pairs(pairs, "tag", typed=False), remove=list(remove), repo=repo_path)
    if fmt == "json":
        click.echo(dump_json(tags))
    else:
        click.echo("tags: " + (", ".join(f"{k}={v}" for k, v in tags.items()) or "(none)"))


@click.command("note")
@click.argument("run")
@click.argument("text")
@click.option("--replace", is_flag=True, help="Replace the notes instead of appending.")
@repo_option
def note_command(run: str, text: str, replace: bool, repo_path: str) -> None:
    """Add a note (Markdown) to a finished run; TEXT '-' reads it from stdin.

    \b
    Examples:
      gitxp note swift-otter-42 "diverged after epoch 40: lr too high"
      git diff | gitxp note swift-otter-42 -
      gitxp note swift-otter-42 --replace "superseded by calm-heron-7"
    """
    from ..ops.manage import note

    if text == "-":
        text = sys.stdin.read()
    note(run, text, replace=replace, repo=repo_path)
    click.echo("note saved")


@click.command("rename")
@click.argument("run")
@click.argument("name")
@repo_option
def rename_command(run: str, name: str, repo_path: str) -> None:
    """Give a run a new name (a new commit on its ref).

    \b
    Examples:
      gitxp rename swift-otter-42 baseline-v2
      gitxp rename 01jdx3k9 "lr sweep best"
    """
    from ..ops.manage import rename

    old = rename(run, name, repo=repo_path)
    click.echo(f"renamed {old} -> {name}")


@click.command("rm")
@click.argument("runs", nargs=-1, metavar="RUN...")
@click.option("--undo", is_flag=True, help="Bring the named runs back from the trash.")
@click.option("--list", "list_", is_flag=True, help="List the runs in the trash.")
@format_option("text", "json", default="text")
@repo_option
def rm_command(runs: tuple[str, ...], undo: bool, list_: bool, fmt: str, repo_path: str) -> None:
    """Remove runs: they move to the trash (refs/gitxp/trash/ID) until `gitxp gc`.

    A removed run vanishes from `gitxp log` at once and can be brought back
    with --undo until `gitxp gc` deletes trash older than 14 days.

    \b
    Examples:
      gitxp rm swift-otter-42 calm-heron-7
      gitxp rm --list
      gitxp rm --undo swift-otter-42
    """
    from ..ops.manage import restore, rm, trash

    if list_:
        items = trash(repo=repo_path)
        if fmt == "json":
            click.echo(dump_json([t.to_dict() for t in items]))
        elif items:
            rows = [
                [t.id[:12], t.name, t.experiment, fmt_time(t.removed_time), t.removed_by or "-"]
                for t in items
            ]
            click.echo(render_table(["id", "name", "experiment", "removed", "by"], rows))
        else:
            click.echo("the trash is empty")
        return
    if not runs:
        raise click.UsageError("name at least one run (or use --list)")
    items = restore(runs, repo=repo_path) if undo else rm(runs, repo=repo_path)
    if fmt == "json":
        click.echo(dump_json([t.to_dict() for t in items]))
        return
    for t in items:
        if undo:
            click.echo(f"restored {t.name} ({t.id})")
        else:
            click.echo(f"removed {t.name} ({t.id}); undo with `gitxp rm --undo {t.id[:12]}`")


@click.command("gc")
@click.option(
    "--grace-days",
    type=click.FloatRange(min=0),
    default=14.0,
    show_default=True,
    help="Delete only trash removed longer ago than this; 0 empties the trash.",
)
@click.option("--no-repack", is_flag=True, help="Do not repack objects.")
@format_option("text", "json", default="text")
@repo_option
def gc_command(grace_days: float, no_repack: bool, fmt: str, repo_path: str) -> None:
    """Empty old trash, repack objects into one pack, and pack gitxp's refs when safe.

    Refs are packed as git packs them (a ref being updated stays loose), and
    not while a run is being recorded. Lock files a killed git or gitxp left
    are removed once provably stale. No object is deleted, and objects no ref
    reaches stay loose under git's grace period: run `git gc --prune=now`
    afterwards to reclaim the space of deleted runs.

    \b
    Examples:
      gitxp gc
      gitxp gc --grace-days 0
    """
    from ..ops.manage import gc

    report = gc(grace_days=grace_days, repack=not no_repack, repo=repo_path)
    if fmt == "json":
        click.echo(dump_json(report.to_dict()))
        return
    for t in report.deleted:
        click.echo(f"deleted {t.name} ({t.id}) from the trash")
    click.echo(
        f"trash: {len(report.deleted)} deleted, {report.kept_in_trash} kept; objects: "
        f"{count(report.packs_before, 'pack')} + {report.loose_before:,} loose -> "
        f"{count(report.packs_after, 'pack')} + {report.loose_after:,} loose"
    )
    for lock in report.locks_cleared:
        click.echo(f"removed the stale lock {lock}")
    if report.refs_skipped:
        click.echo(f"refs not packed: {report.refs_skipped}; run gc again later")
    else:
        click.echo(f"refs: {report.refs_packed} packed")


@click.command("branch")
@click.argument("run")
@click.argument("name")
@click.option("--force", is_flag=True, help="Move the branch if it exists.")
@repo_option
def branch_command(run: str, name: str, force: bool, repo_path: str) -> None:
    """Expose a run as an ordinary branch NAME (for hosts that hide refs/gitxp/*).

    The branch points at the run's newest commit: its files (run.json,
    params.json, metrics/...) on top of the code it ran. Push it with
    `git push origin NAME`. To work on the run's code instead, use
    `gitxp checkout RUN -b BRANCH`.

    \b
    Examples:
      gitxp branch swift-otter-42 runs/swift-otter-42
      git push origin runs/swift-otter-42
    """
    from ..ops.manage import branch

    ref = branch(run, name, force=force, repo=repo_path)
    click.echo(
        f"{ref} now points at run {run}; publish it with `git push origin {shlex.quote(name)}`"
    )
